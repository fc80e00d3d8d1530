// Image decoding and PNG writing (data/image.h): exact round trips, alpha compositing, grey,
// JPEG, BMP, a hand-made GIF, and the errors for truncated, corrupt, missing and oversized
// files; decoding from several threads at once.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <fstream>
#include <string>
#include <thread>
#include <vector>

#include "data/image.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_STB
#include <stb_image_write.h>
#endif

using namespace mmgrad;
using namespace mmgrad::data;

namespace {

// A deterministic, busy RGB image (busy so that PNG cannot compress it to a few bytes).
Image pattern_image(int64_t width, int64_t height, uint32_t seed = 1) {
  Image im;
  im.width = width;
  im.height = height;
  im.pixels.resize(static_cast<size_t>(width * height * 3));
  uint32_t s = seed;
  for (uint8_t& p : im.pixels) {
    s = s * 1664525u + 1013904223u;
    p = static_cast<uint8_t>(s >> 24);
  }
  return im;
}

}  // namespace

#ifdef MMGRAD_HAVE_STB

namespace {

std::vector<uint8_t> read_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

void write_bytes(const std::string& path, const std::vector<uint8_t>& bytes) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(bytes.data()), static_cast<std::streamsize>(bytes.size()));
}

// out = a*c + (1-a)*bg in real numbers, rounded: the reference for compositing.
uint8_t composite(int c, int a, int bg) {
  return static_cast<uint8_t>(std::lround(a / 255.0 * c + (1 - a / 255.0) * bg));
}

// A 2x2 GIF89a written by hand: a 4-colour global palette (red, green, blue, yellow), a
// graphic control extension making colour 3 transparent, and LZW data for the indices
// 0 1 / 2 3. LZW (minimum code size 2; clear = 4, end = 5): codes 4 0 1 2 in 3 bits, then
// the table reaches 8 entries and 3 5 follow in 4 bits, packed LSB first: 44 34 05.
const std::vector<uint8_t> kGif = {
    'G', 'I', 'F', '8', '9', 'a', 2, 0, 2, 0, 0x81, 0, 0,        // screen 2x2, global palette of 4
    0xFF, 0, 0, 0, 0xFF, 0, 0, 0, 0xFF, 0xFF, 0xFF, 0,           // red, green, blue, yellow
    0x21, 0xF9, 4, 0x01, 0, 0, 3, 0,                             // colour 3 is transparent
    0x2C, 0, 0, 0, 0, 2, 0, 2, 0, 0,                             // image 2x2 at 0,0
    2, 3, 0x44, 0x34, 0x05, 0,                                   // LZW data, one sub-block
    0x3B};                                                       // trailer

std::string stb_png(int w, int h, int comp, const std::vector<uint8_t>& px, const std::string& name) {
  const std::string path = mmtest::temp_path(name);
  EXPECT_TRUE(stbi_write_png(path.c_str(), w, h, comp, px.data(), w * comp));
  return path;
}

}  // namespace

TEST(ImageIo, IsAvailableInThisBuild) { EXPECT_TRUE(image_decoding_available()); }

TEST(ImageIo, WritePngReadsBackExactly) {
  for (auto [w, h] : {std::pair<int64_t, int64_t>{1, 1}, {7, 3}, {64, 48}}) {
    const Image im = pattern_image(w, h, static_cast<uint32_t>(w * 100 + h));
    const std::string path = mmtest::temp_path("roundtrip.png");
    write_png(path, im);
    const Image back = decode_image_file(path);
    EXPECT_EQ(back.width, w);
    EXPECT_EQ(back.height, h);
    EXPECT_EQ(back.pixels, im.pixels);
    EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
  }
}

TEST(ImageIo, CompositesRgbaOntoTheBackground) {
  // Opaque, half, faint and fully transparent pixels.
  const std::vector<uint8_t> rgba = {10, 20, 30, 255, 200, 100, 50, 128, 0, 255, 90, 17, 1, 2, 3, 0};
  const std::string path = stb_png(2, 2, 4, rgba, "rgba.png");
  for (uint8_t bg : {uint8_t{255}, uint8_t{0}}) {
    DecodeOptions opt;
    opt.background = {bg, bg, bg};
    const Image im = decode_image_file(path, opt);
    ASSERT_EQ(im.width, 2);
    ASSERT_EQ(im.height, 2);
    for (int i = 0; i < 4; ++i)
      for (int c = 0; c < 3; ++c)
        EXPECT_EQ(im.pixels[i * 3 + c], composite(rgba[i * 4 + c], rgba[i * 4 + 3], bg))
            << "pixel " << i << " channel " << c << " background " << int(bg);
  }
  // Transparent pixels take exactly the background colour, per channel.
  DecodeOptions teal;
  teal.background = {0, 128, 128};
  const Image im = decode_image_file(path, teal);
  EXPECT_EQ(im.at(1, 1, 0), 0);
  EXPECT_EQ(im.at(1, 1, 1), 128);
  EXPECT_EQ(im.at(1, 1, 2), 128);
  EXPECT_EQ(im.at(0, 0, 0), 10);  // opaque: unchanged
}

TEST(ImageIo, GreyAndGreyAlphaPngsBecomeRgb) {
  const std::vector<uint8_t> grey = {0, 50, 100, 255, 7, 9};
  const Image g = decode_image_file(stb_png(3, 2, 1, grey, "grey.png"));
  ASSERT_EQ(g.pixels.size(), 18u);
  for (size_t i = 0; i < grey.size(); ++i)
    for (int c = 0; c < 3; ++c) EXPECT_EQ(g.pixels[i * 3 + c], grey[i]);

  const std::vector<uint8_t> grey_alpha = {100, 255, 100, 0, 100, 51};
  DecodeOptions black;
  black.background = {0, 0, 0};
  const Image ga = decode_image_file(stb_png(3, 1, 2, grey_alpha, "grey_alpha.png"), black);
  EXPECT_EQ(ga.at(0, 0, 0), 100);
  EXPECT_EQ(ga.at(0, 1, 1), 0);
  EXPECT_EQ(ga.at(0, 2, 2), composite(100, 51, 0));
}

TEST(ImageIo, JpegDecodesToCloseValues) {
  // A smooth gradient: JPEG keeps it within a few levels at high quality.
  const int w = 32, h = 16;
  std::vector<uint8_t> px(w * h * 3);
  for (int y = 0; y < h; ++y)
    for (int x = 0; x < w; ++x) {
      px[(y * w + x) * 3 + 0] = static_cast<uint8_t>(x * 8);
      px[(y * w + x) * 3 + 1] = static_cast<uint8_t>(y * 16);
      px[(y * w + x) * 3 + 2] = 128;
    }
  const std::string path = mmtest::temp_path("gradient.jpg");
  ASSERT_TRUE(stbi_write_jpg(path.c_str(), w, h, 3, px.data(), 95));
  const Image im = decode_image_file(path);
  ASSERT_EQ(im.width, w);
  ASSERT_EQ(im.height, h);
  int worst = 0;
  for (size_t i = 0; i < px.size(); ++i) worst = std::max(worst, std::abs(int(im.pixels[i]) - int(px[i])));
  EXPECT_LE(worst, 12);
}

TEST(ImageIo, BmpDecodesExactly) {
  const Image src = pattern_image(5, 3, 9);  // 5 pixels: rows padded to 16 bytes
  const std::string path = mmtest::temp_path("pattern.bmp");
  ASSERT_TRUE(stbi_write_bmp(path.c_str(), 5, 3, 3, src.pixels.data()));
  const Image im = decode_image_file(path);
  EXPECT_EQ(im.width, 5);
  EXPECT_EQ(im.height, 3);
  EXPECT_EQ(im.pixels, src.pixels);
}

TEST(ImageIo, HandMadeGifGivesItsPixelColours) {
  DecodeOptions black;
  black.background = {0, 0, 0};
  const Image im = decode_image_memory(kGif.data(), kGif.size(), "tiny.gif", black);
  ASSERT_EQ(im.width, 2);
  ASSERT_EQ(im.height, 2);
  const std::vector<uint8_t> want = {255, 0, 0, 0, 255, 0, 0, 0, 255, 0, 0, 0};  // last: transparent
  EXPECT_EQ(im.pixels, want);
  const std::string path = mmtest::temp_path("tiny.gif");
  write_bytes(path, kGif);
  const Image white = decode_image_file(path);  // default background: white
  EXPECT_EQ(white.at(1, 1, 0), 255);
  EXPECT_EQ(white.at(1, 1, 1), 255);
  EXPECT_EQ(white.at(1, 1, 2), 255);
  EXPECT_EQ(white.at(0, 1, 1), 255);  // green
}

TEST(ImageIo, TruncatedFilesAreErrorsNamingTheFile) {
  const std::string png = mmtest::temp_path("whole.png");
  write_png(png, pattern_image(32, 32));
  std::vector<uint8_t> bytes = read_bytes(png);
  bytes.resize(bytes.size() / 2);
  const std::string cut = mmtest::temp_path("half.png");
  write_bytes(cut, bytes);
  EXPECT_MMGRAD_ERROR(decode_image_file(cut), "image", cut, "truncated");

  const Image src = pattern_image(16, 16);
  const std::string jpg = mmtest::temp_path("whole.jpg");
  ASSERT_TRUE(stbi_write_jpg(jpg.c_str(), 16, 16, 3, src.pixels.data(), 90));
  bytes = read_bytes(jpg);
  bytes.resize(bytes.size() * 3 / 4);
  write_bytes(cut + ".jpg", bytes);
  EXPECT_MMGRAD_ERROR(decode_image_file(cut + ".jpg"), "image", cut + ".jpg", "truncated");

  // stb reads past the end of a BMP or GIF as zeros; our own checks catch those.
  const std::string bmp = mmtest::temp_path("whole.bmp");
  ASSERT_TRUE(stbi_write_bmp(bmp.c_str(), 16, 16, 3, src.pixels.data()));
  bytes = read_bytes(bmp);
  bytes.resize(bytes.size() - 100);
  write_bytes(cut + ".bmp", bytes);
  EXPECT_MMGRAD_ERROR(decode_image_file(cut + ".bmp"), "image", cut + ".bmp", "truncated");

  std::vector<uint8_t> gif(kGif.begin(), kGif.end() - 4);
  EXPECT_MMGRAD_ERROR(decode_image_memory(gif.data(), gif.size(), "cut.gif"), "image", "cut.gif", "truncated");
}

// Inputs fuzz/fuzz_image found (kept in its corpus): stb_image 2.27 wrote past its Huffman
// arrays for a JPEG table declaring more than 256 codes, read uninitialised tables for a scan
// naming tables no DHT defined, and allocated a PNG chunk's declared
// length (2 GiB from a 132-byte file) before reading it. Both are refused before stb runs.
TEST(ImageIo, FuzzFindingsAreRefusedBeforeStbSeesThem) {
  const std::string corpus = std::string(MMGRAD_SOURCE_DIR) + "/fuzz/corpus/image/";
  EXPECT_MMGRAD_ERROR(decode_image_file(corpus + "found_dht_942_codes.jpg"), "image", "found_dht_942_codes.jpg",
                      "corrupt JPEG: a Huffman table declares 942 codes", "at most 256");
  EXPECT_MMGRAD_ERROR(decode_image_file(corpus + "found_png_chunk_2gib.png"), "image", "found_png_chunk_2gib.png",
                      "truncated");
  // A scan naming DC table 3 and AC table 2 where only tables 0 and 1 exist: stb_image
  // decoded with uninitialised tables and indexed its arrays at ~10 million.
  EXPECT_MMGRAD_ERROR(decode_image_file(corpus + "found_scan_undefined_table.jpg"), "image",
                      "found_scan_undefined_table.jpg", "corrupt JPEG: the scan at byte",
                      "uses DC Huffman table 3, which no table before it defines");
  // A valid JPEG whose APP segment holds the bytes FF C4 followed by large counts (as an ICC
  // profile may) still decodes: segments before the first scan are skipped by length.
  const Image src = pattern_image(8, 8);
  const std::string jpg = mmtest::temp_path("app_payload.jpg");
  ASSERT_TRUE(stbi_write_jpg(jpg.c_str(), 8, 8, 3, src.pixels.data(), 90));
  std::vector<uint8_t> bytes = read_bytes(jpg);
  {
    // The same file, well formed up to its first scan, with that scan's last component naming
    // DC table 2 (the writer defines tables 0 and 1): refused, found by the segment walk.
    std::vector<uint8_t> bad = bytes;
    size_t sos = 2;
    while (sos + 1 < bad.size() && !(bad[sos] == 0xFF && bad[sos + 1] == 0xDA)) ++sos;
    ASSERT_LT(sos + 10, bad.size());
    const size_t components = bad[sos + 4];
    bad[sos + 5 + 2 * (components - 1) + 1] = 0x21;
    EXPECT_MMGRAD_ERROR(decode_image_memory(bad.data(), bad.size(), "bad_scan.jpg"), "image", "bad_scan.jpg",
                        "uses DC Huffman table 2, which no table before it defines");
  }
  std::vector<uint8_t> app = {0xFF, 0xE2, 0x00, 0x16, 0xFF, 0xC4, 0x00, 0x20, 0x00};
  for (int i = 0; i < 16; ++i) app.push_back(0xFF);  // 16 code counts of 255
  app[3] = static_cast<uint8_t>(app.size() - 2);
  bytes.insert(bytes.begin() + 2, app.begin(), app.end());
  write_bytes(jpg, bytes);
  EXPECT_EQ(decode_image_file(jpg).width, 8);
}

TEST(ImageIo, RandomBytesAreAnError) {
  std::vector<uint8_t> noise(1000);
  uint32_t s = 7;
  for (uint8_t& b : noise) b = static_cast<uint8_t>((s = s * 1103515245u + 12345u) >> 16);
  const std::string path = mmtest::temp_path("noise.png");
  write_bytes(path, noise);
  EXPECT_MMGRAD_ERROR(decode_image_file(path), "image", path, "not a PNG, JPEG, BMP or GIF");
  // The right signature followed by garbage.
  const std::vector<uint8_t> sig = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
  std::copy(sig.begin(), sig.end(), noise.begin());
  EXPECT_MMGRAD_ERROR(decode_image_memory(noise.data(), noise.size(), "fake.png"), "image", "fake.png", "corrupt");
  std::vector<uint8_t> text = {'h', 'e', 'l', 'l', 'o'};
  EXPECT_MMGRAD_ERROR(decode_image_memory(text.data(), text.size(), "hello.txt"), "image", "hello.txt");
}

TEST(ImageIo, MissingEmptyAndDirectoryPathsAreErrorsNamingThem) {
  const std::string missing = mmtest::temp_path("no_such_image.png");
  EXPECT_MMGRAD_ERROR(decode_image_file(missing), "image", missing, "No such file");
  const std::string empty = mmtest::temp_path("empty.png");
  write_bytes(empty, {});
  EXPECT_MMGRAD_ERROR(decode_image_file(empty), "image", empty, "empty");
  const std::string dir = mmtest::temp_path("a_folder.png");
  std::filesystem::create_directories(dir);
  EXPECT_MMGRAD_ERROR(decode_image_file(dir), "image", dir, "directory");
  if (::geteuid() != 0) {  // root reads anything
    const std::string locked = mmtest::temp_path("locked.png");
    write_png(locked, pattern_image(2, 2));
    std::filesystem::permissions(locked, std::filesystem::perms::none);
    EXPECT_MMGRAD_ERROR(decode_image_file(locked), "image", locked, "Permission denied");
  }
}

TEST(ImageIo, RefusesImagesAboveMaxPixelsBeforeDecoding) {
  const std::string path = mmtest::temp_path("ten_by_ten.png");
  write_png(path, pattern_image(10, 10));
  DecodeOptions opt;
  opt.max_pixels = 99;
  EXPECT_MMGRAD_ERROR(decode_image_file(path, opt), "image", path, "100 pixels", "limit of 99");
  opt.max_pixels = 100;
  EXPECT_EQ(decode_image_file(path, opt).width, 10);

  // A PNG header claiming 10000 x 10000 (100 Mpixel, 300 MB) with no data: refused from
  // the header with the default limit of 64 Mpixel, before stb allocates anything.
  std::vector<uint8_t> header = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n', 0, 0, 0, 13, 'I', 'H', 'D', 'R',
                                 0, 0, 0x27, 0x10, 0, 0, 0x27, 0x10, 8, 2, 0, 0, 0, 0, 0, 0, 0};
  EXPECT_MMGRAD_ERROR(decode_image_memory(header.data(), header.size(), "huge.png"), "image", "huge.png",
                      "10000x10000");
}

TEST(ImageIo, WritePngErrors) {
  Image bad = pattern_image(4, 4);
  bad.pixels.pop_back();
  EXPECT_MMGRAD_ERROR(write_png(mmtest::temp_path("bad.png"), bad), "image", "bad.png", "needs 48 bytes");
  EXPECT_MMGRAD_ERROR(write_png(mmtest::temp_path("empty_image.png"), Image{}), "image", "empty");
  const std::string nowhere = mmtest::temp_path("no_such_dir") + "/x.png";
  EXPECT_MMGRAD_ERROR(write_png(nowhere, pattern_image(2, 2)), "image", "no_such_dir");
}

TEST(ImageIo, DecodesFromSeveralThreadsAtOnce) {
  // A mix of formats and of failures (whose reasons stb keeps per thread).
  std::vector<std::string> paths;
  for (int i = 0; i < 4; ++i) {
    paths.push_back(mmtest::temp_path("thread_" + std::to_string(i) + ".png"));
    write_png(paths.back(), pattern_image(40 + i, 30, static_cast<uint32_t>(i)));
  }
  const Image src = pattern_image(24, 24, 5);
  paths.push_back(mmtest::temp_path("thread.jpg"));
  ASSERT_TRUE(stbi_write_jpg(paths.back().c_str(), 24, 24, 3, src.pixels.data(), 80));
  paths.push_back(mmtest::temp_path("thread.gif"));
  write_bytes(paths.back(), kGif);
  std::vector<uint8_t> half = read_bytes(paths[0]);
  half.resize(half.size() / 2);
  paths.push_back(mmtest::temp_path("thread_cut.png"));
  write_bytes(paths.back(), half);

  // "pixels" or "error: message" for each file.
  auto decode_all = [&] {
    std::vector<std::string> out;
    for (const std::string& p : paths) {
      try {
        const Image im = decode_image_file(p);
        out.emplace_back(im.pixels.begin(), im.pixels.end());
      } catch (const Error& e) {
        out.push_back(std::string("error: ") + e.what());
      }
    }
    return out;
  };
  const std::vector<std::string> want = decode_all();
  ASSERT_EQ(want.back().rfind("error: ", 0), 0u);
  std::vector<std::vector<std::vector<std::string>>> got(4);
  std::vector<std::thread> threads;
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([&, t] {
      for (int round = 0; round < 25; ++round) got[t].push_back(decode_all());
    });
  for (std::thread& th : threads) th.join();
  for (int t = 0; t < 4; ++t)
    for (const auto& round : got[t]) EXPECT_EQ(round, want) << "thread " << t;
}

#else  // built without libstb

TEST(ImageIo, ReportsThatItWasBuiltWithoutStb) {
  EXPECT_FALSE(image_decoding_available());
  EXPECT_MMGRAD_ERROR(decode_image_file("x.png"), "image", "x.png", "built without libstb");
  const uint8_t byte = 0;
  EXPECT_MMGRAD_ERROR(decode_image_memory(&byte, 1, "y.png"), "image", "built without libstb");
  EXPECT_MMGRAD_ERROR(write_png(mmtest::temp_path("z.png"), pattern_image(2, 2)), "image", "built without libstb");
}

#endif
