// Caption tables (TSV and CSV, the img2dataset/OpenCLIP layout): quoting, columns, UTF-8,
// empty fields. The first byte picks the separator so both dialects are fuzzed.
#include "data/caption_table.h"
#include "fuzz/fuzz_input.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  if (size == 0) return 0;
  data::CaptionTableOptions options;
  options.separator = (data[0] & 1) ? ',' : '\t';
  std::string path = fuzz::input_as_file(data + 1, size - 1, options.separator == ',' ? "table.csv" : "table.tsv");
  data::CaptionTable table;
  bool ok = fuzz::parses_or_refuses_clearly([&] { table = data::read_caption_table(path, options); }, path);
  if (ok) {
    fuzz::require(!table.rows.empty(), "an accepted table has rows");
    for (const auto& row : table.rows) {
      fuzz::require(!row.image_path.empty() && !row.caption.empty(), "rows have a path and a caption");
      fuzz::require(row.line >= 2, "rows come after the header line");
    }
  }
  return 0;
}
