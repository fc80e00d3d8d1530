// Resizing against Pillow, crops, and the eval / train preprocessing pipelines.
#include <gtest/gtest.h>
#include <sys/wait.h>

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "../core/test_util.h"
#include "core/rng.h"
#include "data/image_transform.h"

using namespace mmgrad;
using namespace mmgrad::data;

namespace {

Image make_image(int64_t w, int64_t h) {
  Image img;
  img.width = w;
  img.height = h;
  img.pixels.resize(static_cast<size_t>(w * h * 3));
  return img;
}

void set_pixel(Image& img, int64_t y, int64_t x, uint8_t r, uint8_t g, uint8_t b) {
  uint8_t* p = &img.pixels[static_cast<size_t>((y * img.width + x) * 3)];
  p[0] = r;
  p[1] = g;
  p[2] = b;
}

Image noise_image(int64_t w, int64_t h, uint64_t seed) {
  Image img = make_image(w, h);
  for (size_t i = 0; i < img.pixels.size(); ++i)
    img.pixels[i] = static_cast<uint8_t>(Philox::uniform(seed, i) * 256.0);
  return img;
}

// Smooth ramps: red along x, green along y, blue along the diagonal.
Image gradient_image(int64_t w, int64_t h) {
  Image img = make_image(w, h);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x)
      set_pixel(img, y, x, static_cast<uint8_t>(255 * x / std::max<int64_t>(w - 1, 1)),
                static_cast<uint8_t>(255 * y / std::max<int64_t>(h - 1, 1)),
                static_cast<uint8_t>(255 * (x + y) / std::max<int64_t>(w + h - 2, 1)));
  return img;
}

// Black and white cells: the hardest case for bicubic, whose overshoot Pillow clamps.
Image checkerboard_image(int64_t w, int64_t h, int64_t cell) {
  Image img = make_image(w, h);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) {
      const bool on = ((x / cell) + (y / cell)) % 2 == 1;
      set_pixel(img, y, x, on ? 255 : 0, on ? 230 : 10, on ? 0 : 255);
    }
  return img;
}

Image constant_image(int64_t w, int64_t h, uint8_t r, uint8_t g, uint8_t b) {
  Image img = make_image(w, h);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) set_pixel(img, y, x, r, g, b);
  return img;
}

// ---- Pillow reference

std::string pillow_script() {
  const std::string rel = "tests/data/pillow_resize.py";
  if (const char* dir = std::getenv("MMGRAD_SOURCE_DIR")) return std::string(dir) + "/" + rel;
  if (std::filesystem::exists(rel)) return rel;
#ifdef MMGRAD_SOURCE_DIR
  return std::string(MMGRAD_SOURCE_DIR) + "/" + rel;
#else
  return rel;
#endif
}

struct ResizeCase {
  std::string name;
  Image input;
  int64_t width, height;
  Interpolation interpolation;
};

struct Difference {
  int max = 0;
  double mean = 0.0;
};

const char* filter_name(Interpolation i) { return i == Interpolation::Bilinear ? "bilinear" : "bicubic"; }

// Resizes every case with Pillow through tests/data/pillow_resize.py (one Python process for
// all of them). Returns false, with the reason, when Python or PIL is not available.
bool pillow_resize(const std::vector<ResizeCase>& cases, std::vector<Image>& results,
                   std::string& why_not) {
  const std::string jobs_path = mmtest::temp_path("pillow_jobs.txt");
  std::ofstream jobs(jobs_path);
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string in = mmtest::temp_path("pillow_in_" + std::to_string(i) + ".raw");
    const std::string out = mmtest::temp_path("pillow_out_" + std::to_string(i) + ".raw");
    std::ofstream(in, std::ios::binary)
        .write(reinterpret_cast<const char*>(cases[i].input.pixels.data()),
               static_cast<std::streamsize>(cases[i].input.pixels.size()));
    jobs << in << ' ' << cases[i].input.width << ' ' << cases[i].input.height << ' '
         << filter_name(cases[i].interpolation) << ' ' << cases[i].width << ' ' << cases[i].height << ' ' << out << '\n';
  }
  jobs.close();
  const std::string cmd = "/usr/bin/python3 '" + pillow_script() + "' '" + jobs_path + "' 2>&1";
  const int status = std::system(cmd.c_str());
  const int code = WIFEXITED(status) ? WEXITSTATUS(status) : -1;
  if (code == 77 || code == 127) {
    why_not = "Pillow is not available to /usr/bin/python3: install python3-pil (Debian) to "
              "compare resizes against it";
    return false;
  }
  EXPECT_EQ(code, 0) << "pillow_resize.py failed: " << cmd;
  if (code != 0) return false;
  results.clear();
  for (size_t i = 0; i < cases.size(); ++i) {
    const std::string out = mmtest::temp_path("pillow_out_" + std::to_string(i) + ".raw");
    std::ifstream f(out, std::ios::binary);
    Image r = make_image(cases[i].width, cases[i].height);
    f.read(reinterpret_cast<char*>(r.pixels.data()), static_cast<std::streamsize>(r.pixels.size()));
    EXPECT_EQ(f.gcount(), static_cast<std::streamsize>(r.pixels.size())) << cases[i].name;
    results.push_back(std::move(r));
    std::filesystem::remove(out);
    std::filesystem::remove(mmtest::temp_path("pillow_in_" + std::to_string(i) + ".raw"));
  }
  std::filesystem::remove(jobs_path);
  return true;
}

Difference difference(const Image& a, const Image& b) {
  Difference d;
  if (a.pixels.size() != b.pixels.size()) return {256, 256.0};
  double sum = 0.0;
  for (size_t i = 0; i < a.pixels.size(); ++i) {
    const int diff = std::abs(int{a.pixels[i]} - int{b.pixels[i]});
    d.max = std::max(d.max, diff);
    sum += diff;
  }
  d.mean = sum / static_cast<double>(a.pixels.size());
  return d;
}

// The three kinds of image of each size, with both filters.
std::vector<ResizeCase> cases_for(int64_t w, int64_t h, int64_t ow, int64_t oh) {
  const std::string size = std::to_string(w) + "x" + std::to_string(h) + " -> " +
                           std::to_string(ow) + "x" + std::to_string(oh);
  std::vector<ResizeCase> cases;
  for (Interpolation interp : {Interpolation::Bilinear, Interpolation::Bicubic}) {
    const std::string label = std::string(filter_name(interp)) + " ";
    cases.push_back({label + "noise " + size, noise_image(w, h, static_cast<uint64_t>(w * 1000 + h)), ow, oh, interp});
    cases.push_back({label + "gradient " + size, gradient_image(w, h), ow, oh, interp});
    cases.push_back({label + "checkerboard " + size, checkerboard_image(w, h, 3), ow, oh, interp});
  }
  return cases;
}

std::vector<ResizeCase> join(std::initializer_list<std::vector<ResizeCase>> parts) {
  std::vector<ResizeCase> all;
  for (const auto& p : parts) all.insert(all.end(), p.begin(), p.end());
  return all;
}

// Compares our resize with Pillow's on every case, within the tolerance; prints the
// measured differences.
void expect_matches_pillow(const std::vector<ResizeCase>& cases, int max_tol, double mean_tol) {
  std::vector<Image> want;
  std::string why_not;
  if (!pillow_resize(cases, want, why_not)) {
    if (!why_not.empty()) GTEST_SKIP() << why_not;
    return;
  }
  for (size_t i = 0; i < cases.size(); ++i) {
    const ResizeCase& c = cases[i];
    const Difference d = difference(resize(c.input, c.width, c.height, c.interpolation), want[i]);
    std::printf("  %-42s max %d  mean %.4f\n", c.name.c_str(), d.max, d.mean);
    EXPECT_LE(d.max, max_tol) << c.name;
    EXPECT_LE(d.mean, mean_tol) << c.name;
  }
}

// out = CHW floats of an S x S image; returns the mean of channel c.
double channel_mean(const std::vector<float>& out, int64_t S, int c) {
  double sum = 0.0;
  for (int64_t i = 0; i < S * S; ++i) sum += out[static_cast<size_t>(c * S * S + i)];
  return sum / static_cast<double>(S * S);
}

Preprocess identity_normalisation(int64_t size) {
  Preprocess p = clip_preprocess(size);
  p.mean = {0.0f, 0.0f, 0.0f};
  p.std = {1.0f, 1.0f, 1.0f};
  return p;
}

std::vector<float> run_train(const Image& img, const Preprocess& pre, uint64_t key) {
  std::vector<float> out(static_cast<size_t>(3 * pre.image_size * pre.image_size));
  preprocess_train(img, pre, key, out.data());
  return out;
}

std::vector<float> run_eval(const Image& img, const Preprocess& pre) {
  std::vector<float> out(static_cast<size_t>(3 * pre.image_size * pre.image_size));
  preprocess_eval(img, pre, out.data());
  return out;
}

}  // namespace

// ---- Against Pillow 9.4 (Debian's python3-pil).
//
// Measured with these cases (noise, gradient and 3-pixel checkerboard images; bilinear and
// bicubic): most cases match exactly; the others differ by at most 1 grey level, with mean
// absolute differences of at most 0.020 upscaling, 0.046 downscaling (bicubic checkerboard
// 64x64 -> 28x28) and 0.018 mixed. The differences are ties: Pillow weighs with 22-bit
// fixed-point coefficients, we with float ones, so a value within a hair of a half grey
// level rounds either way. Identity is exact. (Keeping the intermediate image in float
// instead of rounding it to bytes as Pillow does gave mean differences up to 0.22.)
constexpr int kPillowMaxDiff = 1;
constexpr double kPillowMeanDiff = 0.1;

TEST(ImageTransformPillow, UpscalingMatchesPillow) {
  expect_matches_pillow(join({cases_for(20, 30, 57, 41), cases_for(13, 9, 50, 40), cases_for(7, 5, 14, 10)}),
                        kPillowMaxDiff, kPillowMeanDiff);
}

TEST(ImageTransformPillow, DownscalingWithAntialiasMatchesPillow) {
  expect_matches_pillow(join({cases_for(97, 61, 32, 32), cases_for(64, 64, 28, 28),
                              cases_for(100, 75, 37, 23), cases_for(300, 200, 224, 149)}),
                        kPillowMaxDiff, kPillowMeanDiff);
}

TEST(ImageTransformPillow, MixedUpAndDownMatchesPillow) {
  expect_matches_pillow(join({cases_for(40, 20, 23, 47), cases_for(11, 64, 30, 9)}), kPillowMaxDiff,
                        kPillowMeanDiff);
}

// Same size: Pillow returns a copy, and so do we, exactly.
TEST(ImageTransformPillow, IdentityIsExact) {
  expect_matches_pillow(cases_for(31, 17, 31, 17), 0, 0.0);
  for (const ResizeCase& c : cases_for(31, 17, 31, 17))
    EXPECT_EQ(resize(c.input, 31, 17, c.interpolation).pixels, c.input.pixels) << c.name;
}

// ---- Geometry

TEST(ImageTransform, ResizeKeepsAConstantImageConstant) {
  const Image img = constant_image(23, 41, 200, 17, 93);
  for (Interpolation interp : {Interpolation::Bilinear, Interpolation::Bicubic})
    EXPECT_EQ(resize(img, 10, 67, interp).pixels, constant_image(10, 67, 200, 17, 93).pixels);
}

TEST(ImageTransform, ResizeShorterSideKeepsTheAspectRatio) {
  const Image landscape = gradient_image(500, 375);
  const Image portrait = gradient_image(375, 500);
  Image r = resize_shorter_side(landscape, 224, Interpolation::Bicubic);
  EXPECT_EQ(r.width, 298);  // int(224 * 500 / 375) = int(298.67), as torchvision
  EXPECT_EQ(r.height, 224);
  r = resize_shorter_side(portrait, 224, Interpolation::Bilinear);
  EXPECT_EQ(r.width, 224);
  EXPECT_EQ(r.height, 298);
  r = resize_shorter_side(gradient_image(30, 30), 64, Interpolation::Bicubic);
  EXPECT_EQ(r.width, 64);
  EXPECT_EQ(r.height, 64);
  EXPECT_EQ(r.pixels, resize(gradient_image(30, 30), 64, 64, Interpolation::Bicubic).pixels);
}

// Pixels encode their own coordinates, so a crop shows where it was taken.
Image coordinate_image(int64_t w, int64_t h) {
  Image img = make_image(w, h);
  for (int64_t y = 0; y < h; ++y)
    for (int64_t x = 0; x < w; ++x) set_pixel(img, y, x, static_cast<uint8_t>(x), static_cast<uint8_t>(y), 7);
  return img;
}

TEST(ImageTransform, CenterCropOffsetsRoundHalfToEvenAsTorchvision) {
  const Image img = coordinate_image(10, 9);
  struct Want { int64_t w, h, x, y; };
  // torchvision: round((W - w) / 2) with Python's round: 1.5 -> 2, 2.5 -> 2, 0.5 -> 0.
  for (const Want& c : {Want{7, 6, 2, 2}, Want{5, 4, 2, 2}, Want{9, 8, 0, 0}, Want{10, 9, 0, 0},
                        Want{4, 2, 3, 4}, Want{1, 1, 4, 4}}) {
    const Image out = center_crop(img, c.w, c.h);
    ASSERT_EQ(out.width, c.w);
    ASSERT_EQ(out.height, c.h);
    EXPECT_EQ(out.at(0, 0, 0), c.x) << c.w << "x" << c.h;
    EXPECT_EQ(out.at(0, 0, 1), c.y) << c.w << "x" << c.h;
    EXPECT_EQ(out.at(c.h - 1, c.w - 1, 0), c.x + c.w - 1);
  }
}

TEST(ImageTransform, CropCopiesTheBoxAndChecksBounds) {
  const Image img = coordinate_image(12, 8);
  const Image out = crop(img, 3, 2, 5, 4);
  for (int64_t y = 0; y < 4; ++y)
    for (int64_t x = 0; x < 5; ++x) {
      EXPECT_EQ(out.at(y, x, 0), x + 3);
      EXPECT_EQ(out.at(y, x, 1), y + 2);
    }
  EXPECT_EQ(crop(img, 0, 0, 12, 8).pixels, img.pixels);
  EXPECT_MMGRAD_ERROR(crop(img, 8, 0, 5, 4), "crop", "5x4", "x=8", "12x8");
  EXPECT_MMGRAD_ERROR(crop(img, -1, 0, 5, 4), "crop", "leaves");
  EXPECT_MMGRAD_ERROR(crop(img, 0, 5, 5, 4), "crop", "leaves");
  EXPECT_MMGRAD_ERROR(crop(img, 0, 0, 0, 4), "crop", "positive");
  EXPECT_MMGRAD_ERROR(center_crop(img, 13, 4), "center_crop", "13x4", "12x8");
  EXPECT_MMGRAD_ERROR(resized_crop_float(img, {10, 0, 5, 5}, 4, 4, Interpolation::Bilinear, nullptr),
                      "resized_crop", "leaves");
}

TEST(ImageTransform, HflipMirrorsAndTwiceIsIdentity) {
  const Image img = noise_image(13, 6, 5);
  const Image once = hflip(img);
  for (int64_t y = 0; y < 6; ++y)
    for (int64_t x = 0; x < 13; ++x)
      for (int c = 0; c < 3; ++c) EXPECT_EQ(once.at(y, x, c), img.at(y, 12 - x, c));
  EXPECT_EQ(hflip(once).pixels, img.pixels);
}

TEST(ImageTransform, BadSizesAndEmptyImagesAreErrors) {
  const Image img = noise_image(8, 8, 1);
  EXPECT_MMGRAD_ERROR(resize(img, 0, 5, Interpolation::Bicubic), "resize", "positive", "0x5");
  EXPECT_MMGRAD_ERROR(resize(img, 5, -3, Interpolation::Bicubic), "resize", "positive", "5x-3");
  EXPECT_MMGRAD_ERROR(resize(Image{}, 5, 5, Interpolation::Bicubic), "resize", "empty");
  EXPECT_MMGRAD_ERROR(resize_shorter_side(img, 0, Interpolation::Bicubic), "resize_shorter_side", "positive");
  Image broken = img;
  broken.pixels.pop_back();
  EXPECT_MMGRAD_ERROR(resize(broken, 4, 4, Interpolation::Bilinear), "resize", "191 bytes");
  std::vector<float> out(3 * 4 * 4);
  EXPECT_MMGRAD_ERROR(preprocess_eval(Image{}, clip_preprocess(4), out.data()), "preprocess_eval", "empty");
  EXPECT_MMGRAD_ERROR(preprocess_train(Image{}, clip_preprocess(4), 1, out.data()), "preprocess_train", "empty");
}

TEST(ImageTransform, PreprocessSettingsAreValidated) {
  const Image img = noise_image(8, 8, 1);
  std::vector<float> out(3 * 4 * 4);
  Preprocess p = clip_preprocess(4);
  p.std[1] = 0.0f;
  EXPECT_MMGRAD_ERROR(preprocess_eval(img, p, out.data()), "preprocess", "std[1]", "> 0");
  EXPECT_MMGRAD_ERROR(preprocess_eval(img, clip_preprocess(0), out.data()), "preprocess", "image_size");
  EXPECT_MMGRAD_ERROR(preprocess_eval(img, clip_preprocess(-2), out.data()), "preprocess", "image_size", "-2");
  p = clip_preprocess(4);
  p.crop_scale_min = 0.0f;
  EXPECT_MMGRAD_ERROR(preprocess_train(img, p, 1, out.data()), "preprocess", "crop scale");
  p = clip_preprocess(4);
  p.crop_ratio_min = 2.0f;
  EXPECT_MMGRAD_ERROR(preprocess_train(img, p, 1, out.data()), "preprocess", "crop ratio");
  p = clip_preprocess(4);
  p.jitter_hue = 0.7f;
  EXPECT_MMGRAD_ERROR(preprocess_train(img, p, 1, out.data()), "preprocess", "jitter_hue");
  p = clip_preprocess(4);
  p.jitter_contrast = -0.1f;
  EXPECT_MMGRAD_ERROR(preprocess_train(img, p, 1, out.data()), "preprocess", "jitter_contrast");
  // Mean 0 / std 1 (raw [0, 1] values) and the plain preset are fine.
  EXPECT_NO_THROW(preprocess_eval(img, identity_normalisation(4), out.data()));
  EXPECT_NO_THROW(preprocess_train(img, plain_preprocess(4), 3, out.data()));
}

// ---- Pipelines

TEST(ImageTransform, EvalOnAConstantImageIsExactlyTheNormalisedValue) {
  const std::array<uint8_t, 3> v = {200, 17, 93};
  for (const Preprocess& base : {clip_preprocess(16), plain_preprocess(16), identity_normalisation(16)})
    for (Interpolation interp : {Interpolation::Bilinear, Interpolation::Bicubic}) {
      Preprocess p = base;
      p.interpolation = interp;
      const std::vector<float> out = run_eval(constant_image(37, 23, v[0], v[1], v[2]), p);
      for (int c = 0; c < 3; ++c) {
        const float want = (static_cast<float>(v[static_cast<size_t>(c)]) / 255.0f - p.mean[static_cast<size_t>(c)]) /
                           p.std[static_cast<size_t>(c)];
        for (int64_t i = 0; i < 16 * 16; ++i) ASSERT_EQ(out[static_cast<size_t>(c * 256 + i)], want) << c;
      }
    }
}

// The fused eval path (only the crop is resampled) is exactly the float resize of the whole
// image, centre cropped and normalised; and it is the 8-bit resize_shorter_side +
// center_crop up to the 8-bit path's two roundings (at most 0.5 * sum |w| + 0.5 levels).
TEST(ImageTransform, EvalEqualsResizeShorterSideThenCenterCrop) {
  for (const Image& img : {noise_image(53, 31, 2), gradient_image(31, 70), checkerboard_image(45, 44, 2)}) {
    const Preprocess p = clip_preprocess(24);
    const std::vector<float> out = run_eval(img, p);
    const Image bytes = center_crop(resize_shorter_side(img, 24, p.interpolation), 24, 24);
    // The same resize in float, whole: the shorter side becomes 24.
    const int64_t w = img.width <= img.height ? 24 : 24 * img.width / img.height;
    const int64_t h = img.width <= img.height ? 24 * img.height / img.width : 24;
    std::vector<float> full(static_cast<size_t>(w * h * 3));
    resized_crop_float(img, {0, 0, img.width, img.height}, w, h, p.interpolation, full.data());
    // Where center_crop cuts (tested above): its pixels name their coordinates.
    const Image corner = center_crop(coordinate_image(w, h), 24, 24);
    const int64_t x0 = corner.at(0, 0, 0), y0 = corner.at(0, 0, 1);
    double worst_bytes = 0.0;
    for (int c = 0; c < 3; ++c) {
      const float mean = p.mean[static_cast<size_t>(c)], stdev = p.std[static_cast<size_t>(c)];
      for (int64_t y = 0; y < 24; ++y)
        for (int64_t x = 0; x < 24; ++x) {
          const float got = out[static_cast<size_t>((c * 24 + y) * 24 + x)];
          const float v = full[static_cast<size_t>(((y + y0) * w + x + x0) * 3 + c)];
          ASSERT_EQ(got, (v / 255.0f - mean) / stdev) << img.width << "x" << img.height;
          worst_bytes = std::max(worst_bytes, std::abs((got * stdev + mean) * 255.0 - bytes.at(y, x, c)));
        }
    }
    EXPECT_LE(worst_bytes, 1.5) << img.width << "x" << img.height;
  }
}

TEST(ImageTransform, TrainIsAPureFunctionOfTheKey) {
  const Image img = noise_image(60, 45, 9);
  Preprocess p = clip_preprocess(20);
  p.crop_scale_min = 0.3f;
  p.jitter_brightness = p.jitter_contrast = p.jitter_saturation = 0.4f;
  p.jitter_hue = 0.1f;
  p.hflip = true;
  const std::vector<float> a = run_train(img, p, 1234);
  std::vector<float> on_thread;
  std::thread([&] { on_thread = run_train(img, p, 1234); }).join();
  EXPECT_EQ(a, on_thread);
  EXPECT_EQ(a, run_train(img, p, 1234));
  EXPECT_NE(a, run_train(img, p, 1235));
  EXPECT_NE(a, run_train(img, p, 99999));
}

TEST(ImageTransform, TrainWithTheWholeSquareImageEqualsEval) {
  const Image img = noise_image(40, 40, 4);
  Preprocess p = clip_preprocess(24);
  p.crop_scale_min = p.crop_scale_max = 1.0f;
  p.crop_ratio_min = p.crop_ratio_max = 1.0f;
  for (uint64_t key : {0u, 1u, 77u}) EXPECT_EQ(run_train(img, p, key), run_eval(img, p));
}

TEST(ImageTransform, RandomResizedCropBoxesFollowTheRanges) {
  Preprocess p = clip_preprocess(32);
  p.crop_scale_min = 0.25f;
  p.crop_scale_max = 0.8f;
  std::set<int64_t> lefts;
  for (uint64_t key = 0; key < 200; ++key) {
    const Box b = random_resized_crop_box(300, 200, p, key);
    ASSERT_GE(b.x, 0);
    ASSERT_GE(b.y, 0);
    ASSERT_LE(b.x + b.width, 300);
    ASSERT_LE(b.y + b.height, 200);
    const double area = static_cast<double>(b.width * b.height) / (300.0 * 200.0);
    EXPECT_GE(area, 0.25 - 0.02);
    EXPECT_LE(area, 0.8 + 0.02);
    const double ratio = static_cast<double>(b.width) / static_cast<double>(b.height);
    EXPECT_GE(ratio, 0.75 - 0.02);
    EXPECT_LE(ratio, 4.0 / 3.0 + 0.02);
    lefts.insert(b.x);
  }
  EXPECT_GT(lefts.size(), 50u);  // positions spread over the image
  // No ratio-1 box with 90% of a 100x10 image fits: torchvision's fallback, the centred
  // 10x10 square.
  p.crop_scale_min = 0.9f;
  p.crop_scale_max = 1.0f;
  p.crop_ratio_min = p.crop_ratio_max = 1.0f;
  const Box b = random_resized_crop_box(100, 10, p, 5);
  EXPECT_EQ(b.x, 45);
  EXPECT_EQ(b.y, 0);
  EXPECT_EQ(b.width, 10);
  EXPECT_EQ(b.height, 10);
}

TEST(ImageTransform, TrainIsTheResizedCropOfItsBox) {
  const Image img = gradient_image(70, 50);
  Preprocess p = identity_normalisation(16);
  p.crop_scale_min = 0.2f;
  const uint64_t key = 31;
  const Box box = random_resized_crop_box(70, 50, p, key);
  std::vector<float> hwc(16 * 16 * 3);
  resized_crop_float(img, box, 16, 16, p.interpolation, hwc.data());
  const std::vector<float> out = run_train(img, p, key);
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 256; ++i)
      ASSERT_EQ(out[static_cast<size_t>(c * 256 + i)], hwc[static_cast<size_t>(i * 3 + c)] / 255.0f);
}

TEST(ImageTransform, FlipMirrorsTheTrainOutputForAboutHalfTheKeys) {
  const Image img = noise_image(30, 30, 8);
  Preprocess p = identity_normalisation(12);
  int flipped = 0;
  for (uint64_t key = 0; key < 40; ++key) {
    p.hflip = false;
    const std::vector<float> plain = run_train(img, p, key);
    p.hflip = true;
    const std::vector<float> maybe = run_train(img, p, key);
    std::vector<float> mirrored(plain.size());
    for (int64_t row = 0; row < 3 * 12; ++row)
      for (int64_t x = 0; x < 12; ++x)
        mirrored[static_cast<size_t>(row * 12 + x)] = plain[static_cast<size_t>(row * 12 + 11 - x)];
    if (maybe == mirrored) ++flipped;
    else EXPECT_EQ(maybe, plain) << key;  // the crop is the same either way
  }
  EXPECT_GT(flipped, 10);
  EXPECT_LT(flipped, 30);
}

// ---- Colour jitter

TEST(ImageTransform, NeutralColorJitterIsIdentity) {
  const Image img = noise_image(9, 7, 3);
  std::vector<float> rgb(img.pixels.begin(), img.pixels.end());
  for (float& v : rgb) v /= 255.0f;
  const std::vector<float> before = rgb;
  apply_color_jitter(rgb.data(), 63, ColorJitter{});
  EXPECT_EQ(rgb, before);
  // In the pipeline: all-zero jitter amounts leave the resized crop as it is.
  Preprocess p = identity_normalisation(8);
  p.crop_scale_min = 0.5f;
  std::vector<float> hwc(8 * 8 * 3);
  resized_crop_float(img, random_resized_crop_box(9, 7, p, 4), 8, 8, p.interpolation, hwc.data());
  const std::vector<float> out = run_train(img, p, 4);
  for (int c = 0; c < 3; ++c)
    for (int64_t i = 0; i < 64; ++i)
      EXPECT_EQ(out[static_cast<size_t>(c * 64 + i)], hwc[static_cast<size_t>(i * 3 + c)] / 255.0f);
}

TEST(ImageTransform, BrightnessJitterScalesTheMeanWithinItsRange) {
  // Dark enough that a factor of 1.4 never clips, so the mean scales by the factor exactly.
  Image img = noise_image(32, 32, 6);
  for (uint8_t& v : img.pixels) v = static_cast<uint8_t>(30 + v / 4);
  Preprocess p = identity_normalisation(16);
  double lo = 10.0, hi = 0.0;
  for (uint64_t key = 0; key < 30; ++key) {
    p.jitter_brightness = 0.0f;
    const std::vector<float> base = run_train(img, p, key);
    p.jitter_brightness = 0.4f;
    const std::vector<float> bright = run_train(img, p, key);
    const double ratio = (channel_mean(bright, 16, 0) + channel_mean(bright, 16, 1) + channel_mean(bright, 16, 2)) /
                         (channel_mean(base, 16, 0) + channel_mean(base, 16, 1) + channel_mean(base, 16, 2));
    EXPECT_GE(ratio, 0.6 - 1e-5) << key;
    EXPECT_LE(ratio, 1.4 + 1e-5) << key;
    lo = std::min(lo, ratio);
    hi = std::max(hi, ratio);
  }
  EXPECT_LT(lo, 0.8);  // the draws cover the range
  EXPECT_GT(hi, 1.2);
}

TEST(ImageTransform, HueJitterKeepsGreyPixelsGrey) {
  Image img = make_image(20, 20);
  const Image noise = noise_image(20, 20, 12);
  for (int64_t y = 0; y < 20; ++y)
    for (int64_t x = 0; x < 20; ++x) {
      const uint8_t v = noise.at(y, x, 0);
      set_pixel(img, y, x, v, v, v);
    }
  Preprocess p = identity_normalisation(10);
  p.jitter_hue = 0.5f;
  p.jitter_contrast = 0.3f;
  for (uint64_t key = 0; key < 10; ++key) {
    const std::vector<float> out = run_train(img, p, key);
    for (int64_t i = 0; i < 100; ++i) {
      ASSERT_EQ(out[static_cast<size_t>(i)], out[static_cast<size_t>(100 + i)]);
      ASSERT_EQ(out[static_cast<size_t>(i)], out[static_cast<size_t>(200 + i)]);
    }
  }
}

TEST(ImageTransform, ColorJitterStepsDoWhatTorchvisionDoes) {
  // Hue: a third of a turn takes red to green and green to blue.
  std::vector<float> rgb = {1.0f, 0.0f, 0.0f, 0.0f, 0.6f, 0.0f, 0.5f, 0.5f, 0.5f};
  ColorJitter j;
  j.hue = 1.0f / 3.0f;
  apply_color_jitter(rgb.data(), 3, j);
  EXPECT_TRUE(mmtest::near_all({rgb.begin(), rgb.end()}, {0, 1, 0, 0, 0, 0.6, 0.5, 0.5, 0.5}, 1e-6));
  // Saturation 0: each pixel becomes its luma (0.2989 R + 0.587 G + 0.114 B).
  rgb = {1.0f, 0.0f, 0.0f, 0.2f, 0.4f, 0.6f};
  j = ColorJitter{};
  j.saturation = 0.0f;
  apply_color_jitter(rgb.data(), 2, j);
  const double g2 = 0.2989 * 0.2 + 0.587 * 0.4 + 0.114 * 0.6;
  EXPECT_TRUE(mmtest::near_all({rgb.begin(), rgb.end()}, {0.2989, 0.2989, 0.2989, g2, g2, g2}, 1e-6));
  // Contrast 0: every value becomes the image's mean luma.
  rgb = {1.0f, 0.0f, 0.0f, 0.0f, 0.0f, 1.0f};
  j = ColorJitter{};
  j.contrast = 0.0f;
  apply_color_jitter(rgb.data(), 2, j);
  const double m = (0.2989 + 0.114) / 2;
  EXPECT_TRUE(mmtest::near_all({rgb.begin(), rgb.end()}, {m, m, m, m, m, m}, 1e-6));
  // Brightness clamps at 1.
  rgb = {0.8f, 0.4f, 0.1f};
  j = ColorJitter{};
  j.brightness = 1.5f;
  apply_color_jitter(rgb.data(), 1, j);
  EXPECT_TRUE(mmtest::near_all({rgb.begin(), rgb.end()}, {1.0, 0.6, 0.15}, 1e-6));
}
