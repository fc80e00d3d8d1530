#include "data/image_transform.h"

#include <fmt/format.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <utility>
#include <vector>

#include "autograd/ops.h"
#include "core/error.h"
#include "core/rng.h"

namespace mmgrad::data {
namespace {

// Outputs larger than this are refused before any memory is asked for (the decoder refuses
// inputs above the same count by default).
constexpr int64_t kMaxOutputPixels = int64_t{1} << 26;

std::string size_text(int64_t width, int64_t height) { return fmt::format("{}x{}", width, height); }

void check_image(std::string_view op, const Image& image) {
  if (image.width <= 0 || image.height <= 0)
    fail(op, "the image is empty (" + size_text(image.width, image.height) + ")");
  if (image.pixels.size() != static_cast<size_t>(image.width * image.height * 3))
    fail(op, fmt::format("the image claims {} but holds {} bytes, not width * height * 3",
                         size_text(image.width, image.height), image.pixels.size()));
}

void check_output_size(std::string_view op, int64_t width, int64_t height) {
  if (width <= 0 || height <= 0)
    fail(op, "the output size must be positive, got " + size_text(width, height));
  if (width > kMaxOutputPixels / height)
    fail(op, fmt::format("the output size {} is over {} pixels", size_text(width, height),
                         kMaxOutputPixels));
}

void check_box(std::string_view op, const Image& image, const Box& box) {
  if (box.width <= 0 || box.height <= 0)
    fail(op, "the crop size must be positive, got " + size_text(box.width, box.height));
  if (box.x < 0 || box.y < 0 || box.x > image.width - box.width || box.y > image.height - box.height)
    fail(op, fmt::format("the crop {} at x={}, y={} leaves the {} image",
                         size_text(box.width, box.height), box.x, box.y,
                         size_text(image.width, image.height)));
}

// ---- Resampling filters: weight as a function of the distance in input pixels.

double filter_support(Interpolation interpolation) {
  return interpolation == Interpolation::Bilinear ? 1.0 : 2.0;
}

double filter_weight(Interpolation interpolation, double x) {
  x = std::abs(x);
  if (interpolation == Interpolation::Bilinear) return x < 1.0 ? 1.0 - x : 0.0;
  // Keys' cubic convolution with a = -0.5 (Pillow's choice; PyTorch's bicubic uses -0.75).
  constexpr double a = -0.5;
  if (x < 1.0) return ((a + 2.0) * x - (a + 3.0)) * x * x + 1.0;
  if (x < 2.0) return (((x - 5.0) * x + 8.0) * x - 4.0) * a;
  return 0.0;
}

// The taps of one axis: output i reads the inputs first[i] .. first[i] + count[i] - 1 (in
// the coordinates of the source range) with weights weights[i * stride + k], which sum to 1.
struct AxisTaps {
  int64_t stride = 0;
  std::vector<int64_t> first, count;
  std::vector<float> weights;
};

// `in_size` inputs resampled to `out_size` outputs, of which only [out_first, out_first +
// out_count) are wanted (a crop of the resized image costs only what it keeps).
AxisTaps axis_taps(int64_t in_size, int64_t out_size, int64_t out_first, int64_t out_count,
                   Interpolation interpolation) {
  const double scale = static_cast<double>(in_size) / static_cast<double>(out_size);
  // When shrinking, the filter is stretched by the shrink factor: each output then averages
  // all the inputs it covers instead of sampling a few of them (which would alias).
  const double stretch = std::max(scale, 1.0);
  const double support = filter_support(interpolation) * stretch;
  AxisTaps taps;
  taps.stride = static_cast<int64_t>(std::ceil(support)) * 2 + 1;
  taps.first.resize(static_cast<size_t>(out_count));
  taps.count.resize(static_cast<size_t>(out_count));
  taps.weights.assign(static_cast<size_t>(out_count * taps.stride), 0.0f);
  std::vector<double> w(static_cast<size_t>(taps.stride));
  for (int64_t i = 0; i < out_count; ++i) {
    // Pixel centres sit at +0.5: output i covers the inputs around `center`.
    const double center = (static_cast<double>(out_first + i) + 0.5) * scale;
    const int64_t begin = std::max<int64_t>(0, static_cast<int64_t>(std::floor(center - support + 0.5)));
    const int64_t end = std::min<int64_t>(in_size, static_cast<int64_t>(std::floor(center + support + 0.5)));
    const int64_t n = std::min(end - begin, taps.stride);
    double sum = 0.0;
    for (int64_t k = 0; k < n; ++k) {
      w[static_cast<size_t>(k)] =
          filter_weight(interpolation, (static_cast<double>(begin + k) - center + 0.5) / stretch);
      sum += w[static_cast<size_t>(k)];
    }
    // Normalised so that the taps cut off at the image border still average to a flat level.
    float* out = &taps.weights[static_cast<size_t>(i * taps.stride)];
    for (int64_t k = 0; k < n; ++k)
      out[k] = static_cast<float>(sum != 0.0 ? w[static_cast<size_t>(k)] / sum : 0.0);
    taps.first[static_cast<size_t>(i)] = begin;
    taps.count[static_cast<size_t>(i)] = n;
  }
  return taps;
}

float clamp_byte_range(float v) { return std::min(std::max(v, 0.0f), 255.0f); }

// Pillow's rounding of a value in [0, 255] to a byte: halves go up.
float round_byte(float v) { return std::floor(v + 0.5f); }

// Each output is computed as p0 + sum_k w_k (p_k - p0) with p0 the first tap, which equals
// sum_k w_k p_k because the weights sum to 1, but keeps a flat region exactly flat: the float
// weights do not sum to exactly 1, and the plain sum would be off by a rounding error.
//
// Horizontal pass over image rows [row_begin, row_end): writes out_w x 3 floats per row.
// Values are clamped to [0, 255] as Pillow's 8-bit intermediate image is, so that bicubic
// overshoot at an edge is not carried into the vertical pass. With `bytes` they are also
// rounded to whole grey levels as in Pillow's intermediate image: the 8-bit resize then
// rounds where Pillow does and agrees with it almost everywhere (without, ~20% of the pixels
// of a noisy image differ by one level: double rounding). The float path skips it.
void horizontal_pass(const Image& image, const Box& src, const AxisTaps& tx, int64_t row_begin,
                     int64_t row_end, bool bytes, float* out) {
  const int64_t out_w = static_cast<int64_t>(tx.first.size());
  std::vector<float> row(static_cast<size_t>(src.width * 3));
  for (int64_t y = row_begin; y < row_end; ++y) {
    const uint8_t* in = &image.pixels[static_cast<size_t>(((src.y + y) * image.width + src.x) * 3)];
    for (int64_t j = 0; j < src.width * 3; ++j) row[static_cast<size_t>(j)] = in[j];
    float* o = out + (y - row_begin) * out_w * 3;
    for (int64_t i = 0; i < out_w; ++i) {
      const float* p = &row[static_cast<size_t>(tx.first[static_cast<size_t>(i)] * 3)];
      const float* w = &tx.weights[static_cast<size_t>(i * tx.stride)];
      float r = 0.0f, g = 0.0f, b = 0.0f;
      for (int64_t k = 1; k < tx.count[static_cast<size_t>(i)]; ++k) {
        r += w[k] * (p[3 * k + 0] - p[0]);
        g += w[k] * (p[3 * k + 1] - p[1]);
        b += w[k] * (p[3 * k + 2] - p[2]);
      }
      const float sums[3] = {p[0] + r, p[1] + g, p[2] + b};
      for (int c = 0; c < 3; ++c) {
        const float v = clamp_byte_range(sums[c]);
        o[3 * i + c] = bytes ? round_byte(v) : v;
      }
    }
  }
}

// Vertical pass: `rows` holds the horizontal pass of source rows from `row_begin` on.
void vertical_pass(const float* rows, int64_t row_begin, int64_t out_w, const AxisTaps& ty,
                   float* out) {
  const int64_t n = out_w * 3;
  std::vector<float> acc(static_cast<size_t>(n));
  for (size_t i = 0; i < ty.first.size(); ++i) {
    const float* ref = rows + (ty.first[i] - row_begin) * n;
    const float* w = &ty.weights[i * static_cast<size_t>(ty.stride)];
    std::fill(acc.begin(), acc.end(), 0.0f);
    for (int64_t k = 1; k < ty.count[i]; ++k) {
      const float* src = ref + k * n;
      const float wk = w[k];
      for (int64_t j = 0; j < n; ++j) acc[static_cast<size_t>(j)] += wk * (src[j] - ref[j]);
    }
    float* o = out + static_cast<int64_t>(i) * n;
    for (int64_t j = 0; j < n; ++j) o[j] = clamp_byte_range(ref[j] + acc[static_cast<size_t>(j)]);
  }
}

// The core of every resize: `src` (a box of the image, treated as if cropped out first) is
// resampled to out_w x out_h, and the window `win` of that output is written to `out` as
// HWC floats in [0, 255], win.width * win.height * 3 of them. `bytes`: see horizontal_pass.
void resample(const Image& image, const Box& src, int64_t out_w, int64_t out_h, const Box& win,
              Interpolation interpolation, bool bytes, float* out) {
  const AxisTaps tx = axis_taps(src.width, out_w, win.x, win.width, interpolation);
  const AxisTaps ty = axis_taps(src.height, out_h, win.y, win.height, interpolation);
  // Only the source rows some output row reads go through the horizontal pass.
  int64_t row_begin = src.height, row_end = 0;
  for (size_t i = 0; i < ty.first.size(); ++i) {
    row_begin = std::min(row_begin, ty.first[i]);
    row_end = std::max(row_end, ty.first[i] + ty.count[i]);
  }
  // Reused per thread: a fresh vector per image costs a zero fill and, on the main thread,
  // page faults as glibc returns the memory to the kernel and takes it back (measured: 3x
  // slower preprocessing at 224 pixels).
  thread_local std::vector<float> rows;
  rows.resize(static_cast<size_t>((row_end - row_begin) * win.width * 3));
  horizontal_pass(image, src, tx, row_begin, row_end, bytes, rows.data());
  vertical_pass(rows.data(), row_begin, win.width, ty, out);
}

Box whole(const Image& image) { return {0, 0, image.width, image.height}; }

// Python's round(extra / 2) for an integer extra >= 0: halves go to the even neighbour.
int64_t half_rounded_to_even(int64_t extra) {
  int64_t half = extra / 2;
  if (extra % 2 == 1 && half % 2 == 1) ++half;
  return half;
}

// torchvision's Resize(size) output size for an int size.
std::pair<int64_t, int64_t> shorter_side_size(int64_t width, int64_t height, int64_t size) {
  // Integer division: torchvision's int(size * long / short) truncates, and the float
  // quotient of these small integers never lands on the wrong side of an integer.
  if (width <= height) return {size, size * height / width};
  return {size * width / height, size};
}

// ---- Colour jitter (torchvision's ColorJitter on float images).

float clamp01(float v) { return std::min(std::max(v, 0.0f), 1.0f); }

// torchvision's rgb_to_grayscale weights (ITU-R 601-2 luma).
float luma(const float* p) { return 0.2989f * p[0] + 0.587f * p[1] + 0.114f * p[2]; }

void adjust_brightness(float* rgb, int64_t n, float factor) {
  for (int64_t j = 0; j < n * 3; ++j) rgb[j] = clamp01(rgb[j] * factor);
}

// Blends towards the mean luma of the whole image.
void adjust_contrast(float* rgb, int64_t n, float factor) {
  double sum = 0.0;
  for (int64_t p = 0; p < n; ++p) sum += luma(rgb + 3 * p);
  const float mean = static_cast<float>(sum / static_cast<double>(n));
  for (int64_t j = 0; j < n * 3; ++j) rgb[j] = clamp01(factor * rgb[j] + (1.0f - factor) * mean);
}

// Blends each pixel towards its own grey.
void adjust_saturation(float* rgb, int64_t n, float factor) {
  for (int64_t p = 0; p < n; ++p) {
    float* q = rgb + 3 * p;
    const float grey = luma(q);
    for (int c = 0; c < 3; ++c) q[c] = clamp01(factor * q[c] + (1.0f - factor) * grey);
  }
}

// Rotates the hue by `shift` turns in HSV space. Greys (max == min) have no hue and come
// back unchanged: with saturation 0 every channel is rebuilt as the value.
void adjust_hue(float* rgb, int64_t n, float shift) {
  for (int64_t p = 0; p < n; ++p) {
    float* q = rgb + 3 * p;
    const float r = q[0], g = q[1], b = q[2];
    const float maxc = std::max({r, g, b}), minc = std::min({r, g, b});
    const float range = maxc - minc;
    if (range <= 0.0f) continue;
    const float s = range / maxc, v = maxc;
    float h;  // in sixths of a turn
    if (maxc == r) h = (g - b) / range;
    else if (maxc == g) h = 2.0f + (b - r) / range;
    else h = 4.0f + (r - g) / range;
    float turns = h / 6.0f + shift;
    turns -= std::floor(turns);  // into [0, 1)
    const float h6 = turns * 6.0f;
    const float sector = std::floor(h6);
    const float f = h6 - sector;
    const float pv = clamp01(v * (1.0f - s)), qv = clamp01(v * (1.0f - s * f)),
                tv = clamp01(v * (1.0f - s * (1.0f - f)));
    switch (static_cast<int>(sector) % 6) {
      case 0: q[0] = v; q[1] = tv; q[2] = pv; break;
      case 1: q[0] = qv; q[1] = v; q[2] = pv; break;
      case 2: q[0] = pv; q[1] = v; q[2] = tv; break;
      case 3: q[0] = pv; q[1] = qv; q[2] = v; break;
      case 4: q[0] = tv; q[1] = pv; q[2] = v; break;
      default: q[0] = v; q[1] = pv; q[2] = qv; break;
    }
  }
}

// Fixed Philox counters of preprocess_train's draws (documented in the header).
constexpr uint64_t kCropCounter = 0;      // 4 per try, 10 tries
constexpr int kCropTries = 10;
constexpr uint64_t kOrderCounter = 40;    // 3 draws: a Fisher-Yates shuffle of 4 steps
constexpr uint64_t kFactorCounter = 43;   // brightness, contrast, saturation, hue
constexpr uint64_t kFlipCounter = 47;

double lerp(double lo, double hi, double u) { return lo + (hi - lo) * u; }

// A multiplicative factor in [max(0, 1 - amount), 1 + amount], or 1 when off.
float jitter_factor(float amount, double u) {
  if (amount <= 0.0f) return 1.0f;
  return static_cast<float>(lerp(std::max(0.0, 1.0 - amount), 1.0 + amount, u));
}

ColorJitter draw_color_jitter(const Preprocess& pre, uint64_t key) {
  ColorJitter j;
  for (int i = 3; i >= 1; --i) {
    const double u = Philox::uniform(key, kOrderCounter + static_cast<uint64_t>(3 - i));
    std::swap(j.order[static_cast<size_t>(i)], j.order[static_cast<size_t>(u * (i + 1))]);
  }
  j.brightness = jitter_factor(pre.jitter_brightness, Philox::uniform(key, kFactorCounter + 0));
  j.contrast = jitter_factor(pre.jitter_contrast, Philox::uniform(key, kFactorCounter + 1));
  j.saturation = jitter_factor(pre.jitter_saturation, Philox::uniform(key, kFactorCounter + 2));
  j.hue = pre.jitter_hue > 0.0f
              ? static_cast<float>(lerp(-pre.jitter_hue, pre.jitter_hue, Philox::uniform(key, kFactorCounter + 3)))
              : 0.0f;
  return j;
}

bool jitter_enabled(const Preprocess& pre) {
  return pre.jitter_brightness > 0 || pre.jitter_contrast > 0 || pre.jitter_saturation > 0 ||
         pre.jitter_hue > 0;
}

// Writes CHW out[c][y][x] = (hwc[y][x'][c] / divisor - mean[c]) / std[c] for an S x S image,
// x' mirrored when `flip`. divisor is 255 for byte-range values, 1 for values in [0, 1].
void write_normalised(const float* hwc, int64_t size, const Preprocess& pre, float divisor,
                      bool flip, float* out) {
  for (int c = 0; c < 3; ++c) {
    const float mean = pre.mean[static_cast<size_t>(c)], stdev = pre.std[static_cast<size_t>(c)];
    float* plane = out + c * size * size;
    for (int64_t y = 0; y < size; ++y)
      for (int64_t x = 0; x < size; ++x) {
        const int64_t sx = flip ? size - 1 - x : x;
        plane[y * size + x] = (hwc[(y * size + sx) * 3 + c] / divisor - mean) / stdev;
      }
  }
}

}  // namespace

Image resize(const Image& image, int64_t width, int64_t height, Interpolation interpolation) {
  check_image("resize", image);
  check_output_size("resize", width, height);
  std::vector<float> values(static_cast<size_t>(width * height * 3));
  resample(image, whole(image), width, height, {0, 0, width, height}, interpolation, true, values.data());
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(values.size());
  // Round half up, as Pillow's fixed-point path does; values are already in [0, 255].
  for (size_t j = 0; j < values.size(); ++j) out.pixels[j] = static_cast<uint8_t>(values[j] + 0.5f);
  return out;
}

Image resize_shorter_side(const Image& image, int64_t size, Interpolation interpolation) {
  check_image("resize_shorter_side", image);
  if (size <= 0) fail("resize_shorter_side", fmt::format("the size must be positive, got {}", size));
  const auto [w, h] = shorter_side_size(image.width, image.height, size);
  return resize(image, w, h, interpolation);
}

void resized_crop_float(const Image& image, const Box& box, int64_t width, int64_t height,
                        Interpolation interpolation, float* out) {
  check_image("resized_crop", image);
  check_box("resized_crop", image, box);
  check_output_size("resized_crop", width, height);
  resample(image, box, width, height, {0, 0, width, height}, interpolation, false, out);
}

Image crop(const Image& image, int64_t x, int64_t y, int64_t width, int64_t height) {
  check_image("crop", image);
  check_box("crop", image, {x, y, width, height});
  Image out;
  out.width = width;
  out.height = height;
  out.pixels.resize(static_cast<size_t>(width * height * 3));
  for (int64_t r = 0; r < height; ++r) {
    const auto from = image.pixels.begin() + ((y + r) * image.width + x) * 3;
    std::copy(from, from + width * 3, out.pixels.begin() + r * width * 3);
  }
  return out;
}

Image center_crop(const Image& image, int64_t width, int64_t height) {
  check_image("center_crop", image);
  if (width <= 0 || height <= 0 || width > image.width || height > image.height)
    fail("center_crop", fmt::format("cannot cut {} out of the {} image", size_text(width, height),
                                    size_text(image.width, image.height)));
  return crop(image, half_rounded_to_even(image.width - width),
              half_rounded_to_even(image.height - height), width, height);
}

Image hflip(const Image& image) {
  check_image("hflip", image);
  Image out = image;
  for (int64_t y = 0; y < image.height; ++y)
    for (int64_t x = 0; x < image.width; ++x)
      for (int c = 0; c < 3; ++c)
        out.pixels[static_cast<size_t>((y * image.width + x) * 3 + c)] = image.at(y, image.width - 1 - x, c);
  return out;
}

Preprocess clip_preprocess(int64_t size) {
  Preprocess p;
  p.image_size = size;
  return p;
}

Preprocess plain_preprocess(int64_t size) {
  Preprocess p;
  p.image_size = size;
  p.mean = {0.5f, 0.5f, 0.5f};
  p.std = {0.5f, 0.5f, 0.5f};
  return p;
}

void validate_preprocess(const Preprocess& pre) {
  const char* op = "preprocess";
  if (pre.image_size <= 0 || pre.image_size > (int64_t{1} << 13))
    fail(op, fmt::format("image_size must be in [1, 8192], got {}", pre.image_size));
  for (size_t c = 0; c < 3; ++c) {
    if (!std::isfinite(pre.mean[c])) fail(op, fmt::format("mean[{}] is not finite", c));
    if (!(pre.std[c] > 0.0f) || !std::isfinite(pre.std[c]))
      fail(op, fmt::format("std[{}] must be a finite number > 0, got {}", c, pre.std[c]));
  }
  if (!(pre.crop_scale_min > 0.0f && pre.crop_scale_min <= pre.crop_scale_max && pre.crop_scale_max <= 1.0f))
    fail(op, fmt::format("the crop scale range must satisfy 0 < min <= max <= 1, got [{}, {}]",
                         pre.crop_scale_min, pre.crop_scale_max));
  if (!(pre.crop_ratio_min > 0.0f && pre.crop_ratio_min <= pre.crop_ratio_max && std::isfinite(pre.crop_ratio_max)))
    fail(op, fmt::format("the crop ratio range must satisfy 0 < min <= max, got [{}, {}]",
                         pre.crop_ratio_min, pre.crop_ratio_max));
  const std::pair<const char*, float> amounts[] = {{"jitter_brightness", pre.jitter_brightness},
                                                   {"jitter_contrast", pre.jitter_contrast},
                                                   {"jitter_saturation", pre.jitter_saturation},
                                                   {"jitter_hue", pre.jitter_hue}};
  for (const auto& [name, v] : amounts)
    if (!(v >= 0.0f) || !std::isfinite(v)) fail(op, fmt::format("{} must be >= 0, got {}", name, v));
  if (pre.jitter_hue > 0.5f)
    fail(op, fmt::format("jitter_hue is a fraction of a turn and must be <= 0.5, got {}", pre.jitter_hue));
}

void preprocess_eval(const Image& image, const Preprocess& pre, float* out) {
  validate_preprocess(pre);
  check_image("preprocess_eval", image);
  const int64_t S = pre.image_size;
  const auto [w, h] = shorter_side_size(image.width, image.height, S);
  const Box window = {half_rounded_to_even(w - S), half_rounded_to_even(h - S), S, S};
  thread_local std::vector<float> hwc;  // reused: see resample
  hwc.resize(static_cast<size_t>(S * S * 3));
  resample(image, whole(image), w, h, window, pre.interpolation, false, hwc.data());
  write_normalised(hwc.data(), S, pre, 255.0f, false, out);
}

Box random_resized_crop_box(int64_t width, int64_t height, const Preprocess& pre, uint64_t key) {
  const double area = static_cast<double>(width) * static_cast<double>(height);
  const double log_lo = std::log(static_cast<double>(pre.crop_ratio_min));
  const double log_hi = std::log(static_cast<double>(pre.crop_ratio_max));
  for (int t = 0; t < kCropTries; ++t) {
    auto u = [&](int k) { return Philox::uniform(key, kCropCounter + static_cast<uint64_t>(4 * t + k)); };
    const double target = area * lerp(pre.crop_scale_min, pre.crop_scale_max, u(0));
    const double ratio = std::exp(lerp(log_lo, log_hi, u(1)));
    // std::nearbyint rounds halves to even, as Python's round() in torchvision.
    const auto w = static_cast<int64_t>(std::nearbyint(std::sqrt(target * ratio)));
    const auto h = static_cast<int64_t>(std::nearbyint(std::sqrt(target / ratio)));
    if (w > 0 && w <= width && h > 0 && h <= height) {
      const auto top = static_cast<int64_t>(u(2) * static_cast<double>(height - h + 1));
      const auto left = static_cast<int64_t>(u(3) * static_cast<double>(width - w + 1));
      return {left, top, w, h};
    }
  }
  // No try fitted: the largest centred box whose ratio is in range (torchvision's fallback).
  const double in_ratio = static_cast<double>(width) / static_cast<double>(height);
  int64_t w = width, h = height;
  if (in_ratio < pre.crop_ratio_min)
    h = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(static_cast<double>(w) / pre.crop_ratio_min)));
  else if (in_ratio > pre.crop_ratio_max)
    w = std::max<int64_t>(1, static_cast<int64_t>(std::nearbyint(static_cast<double>(h) * pre.crop_ratio_max)));
  h = std::min(h, height);
  w = std::min(w, width);
  return {(width - w) / 2, (height - h) / 2, w, h};
}

void apply_color_jitter(float* rgb, int64_t pixels, const ColorJitter& jitter) {
  if (pixels <= 0) return;
  for (int step : jitter.order) {
    switch (step) {
      case 0: if (jitter.brightness != 1.0f) adjust_brightness(rgb, pixels, jitter.brightness); break;
      case 1: if (jitter.contrast != 1.0f) adjust_contrast(rgb, pixels, jitter.contrast); break;
      case 2: if (jitter.saturation != 1.0f) adjust_saturation(rgb, pixels, jitter.saturation); break;
      case 3: if (jitter.hue != 0.0f) adjust_hue(rgb, pixels, jitter.hue); break;
      default: fail("color_jitter", fmt::format("unknown step {} in the order (0 - 3)", step));
    }
  }
}

void preprocess_train(const Image& image, const Preprocess& pre, uint64_t key, float* out) {
  validate_preprocess(pre);
  check_image("preprocess_train", image);
  const int64_t S = pre.image_size;
  const Box box = random_resized_crop_box(image.width, image.height, pre, key);
  thread_local std::vector<float> hwc;  // reused: see resample
  hwc.resize(static_cast<size_t>(S * S * 3));
  resample(image, box, S, S, {0, 0, S, S}, pre.interpolation, false, hwc.data());
  float divisor = 255.0f;
  if (jitter_enabled(pre)) {
    for (float& v : hwc) v /= 255.0f;  // torchvision jitters float images in [0, 1]
    divisor = 1.0f;
    apply_color_jitter(hwc.data(), S * S, draw_color_jitter(pre, key));
  }
  const bool flip = pre.hflip && Philox::uniform(key, kFlipCounter) < 0.5;
  write_normalised(hwc.data(), S, pre, divisor, flip, out);
}

Image image_from_chw(const Tensor& chw) {
  if (chw.dim() != 3 || chw.shape()[0] != 3) fail("image_from_chw", "expects f32 [3, H, W]", {describe("chw", chw)});
  const int64_t H = chw.shape()[1], W = chw.shape()[2];
  const std::vector<float> v = to_vector<float>(chw.contiguous());
  Image img;
  img.width = W, img.height = H;
  img.pixels.resize(static_cast<size_t>(H * W * 3));
  for (int64_t y = 0; y < H; ++y)
    for (int64_t x = 0; x < W; ++x)
      for (int c = 0; c < 3; ++c) {
        const float f = std::clamp(v[static_cast<size_t>((c * H + y) * W + x)], 0.0f, 1.0f);
        img.pixels[static_cast<size_t>((y * W + x) * 3 + c)] = static_cast<uint8_t>(std::lround(f * 255.0f));
      }
  return img;
}

}  // namespace mmgrad::data
