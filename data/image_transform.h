// Image preprocessing for the models: resizing, cropping, training augmentation, and the
// eval / train pipelines that turn a decoded Image into a normalised CHW float32 block.
//
// Resizing follows Pillow's Image.resize (which CLIP's and OpenCLIP's torchvision pipelines
// call): a separable convolution, one horizontal then one vertical pass, pixel centres at
// +0.5, and antialiasing when shrinking (the filter's support is stretched by the shrink
// factor, so every input pixel contributes). Bicubic is Keys' cubic with a = -0.5, as
// Pillow's. We compute in float with float weights where Pillow uses 22-bit fixed point.
// The 8-bit resize rounds its intermediate (horizontal-pass) image to whole grey levels as
// Pillow's does, and so agrees with Pillow to within one grey level, on under 5% of the
// values (tests/data/test_image_transform.cpp measures it). The float path, which the
// pipelines use, rounds nothing: it differs from Pillow-then-ToTensor by up to about a grey
// level, in favour of precision.
//
// Nothing here uses the thread pool: the data loader already runs one image per worker, and
// every function is safe to call from several threads at once.
#pragma once
#include <array>
#include <cstdint>

#include "core/tensor.h"
#include "data/image.h"

namespace mmgrad::data {

enum class Interpolation { Bilinear, Bicubic };

// A rectangle of pixels: columns [x, x + width), rows [y, y + height).
struct Box {
  int64_t x = 0, y = 0, width = 0, height = 0;
};

// Pillow's Image.resize(..., BILINEAR or BICUBIC) of an RGB image, rounded to bytes.
Image resize(const Image& image, int64_t width, int64_t height, Interpolation interpolation);

// torchvision's Resize(size) with an int size: the shorter side becomes `size`, the longer
// one size * long / short rounded down, so the aspect ratio is kept.
Image resize_shorter_side(const Image& image, int64_t size, Interpolation interpolation);

// The float path: crops `box` out of the image, then resizes the crop to width x height as
// torchvision's resized_crop does (the filter sees only pixels inside the box). Writes HWC
// floats in [0, 255], clamped but not rounded to bytes, to out (width * height * 3).
void resized_crop_float(const Image& image, const Box& box, int64_t width, int64_t height,
                        Interpolation interpolation, float* out);

// torchvision's crops. center_crop puts the box at round((W - w) / 2), round((H - h) / 2)
// with Python's round (halves to even); both throw when the box leaves the image.
Image crop(const Image& image, int64_t x, int64_t y, int64_t width, int64_t height);
Image center_crop(const Image& image, int64_t width, int64_t height);
Image hflip(const Image& image);

// What the image tower expects, and how training perturbs it.
struct Preprocess {
  int64_t image_size = 224;  // the square the model sees
  Interpolation interpolation = Interpolation::Bicubic;
  // Normalisation of the [0, 1] pixel values: (x - mean) / std per channel. Defaults are
  // CLIP's (statistics of its training images); mean 0 / std 1 leaves [0, 1].
  std::array<float, 3> mean = {0.48145466f, 0.4578275f, 0.40821073f};
  std::array<float, 3> std = {0.26862954f, 0.26130258f, 0.27577711f};

  // Training augmentation. Random resized crop as torchvision's RandomResizedCrop (OpenCLIP's
  // training transform): a box of area fraction in [crop_scale_min, crop_scale_max] and
  // aspect ratio (w / h) log-uniform in [crop_ratio_min, crop_ratio_max]; 10 tries, then a
  // centre crop clipped to the ratio range. OpenCLIP's default scale is (0.9, 1.0).
  float crop_scale_min = 0.9f, crop_scale_max = 1.0f;
  float crop_ratio_min = 3.0f / 4.0f, crop_ratio_max = 4.0f / 3.0f;
  // Colour jitter as torchvision's ColorJitter(brightness, contrast, saturation, hue): the
  // factors are drawn from [max(0, 1 - v), 1 + v] (hue: a shift in [-v, v] turns, v <= 0.5)
  // and the enabled adjustments are applied in a random order, as torchvision does. Zero
  // turns an adjustment off.
  float jitter_brightness = 0, jitter_contrast = 0, jitter_saturation = 0, jitter_hue = 0;
  // Off by default: mirroring an image breaks captions that say "left of".
  bool hflip = false;
};

// CLIP's preprocessing at `size` (bicubic, CLIP's mean / std, training crop scale 0.9 - 1).
Preprocess clip_preprocess(int64_t size);
// The same with mean 0.5 / std 0.5 in every channel, which maps [0, 1] to [-1, 1]: for models
// trained from scratch on data whose statistics are not CLIP's (MNIST, synthetic shapes).
Preprocess plain_preprocess(int64_t size);

// Throws mmgrad::Error naming what is wrong (size, std, crop ranges, jitter amounts).
void validate_preprocess(const Preprocess& pre);

// Eval / CLIP's inference pipeline: resize the shorter side to image_size, centre crop
// image_size x image_size, scale to [0, 1], normalise. Writes CHW float32, 3 * S * S values.
// Only the pixels inside the crop are computed.
void preprocess_eval(const Image& image, const Preprocess& pre, float* out);
// The inverse direction for display and export: f32 [3, H, W] with values in [0, 1]
// (clamped) to 8-bit RGB.
Image image_from_chw(const Tensor& chw);

// Training pipeline: random resized crop straight to image_size x image_size, colour jitter,
// horizontal flip, normalise; same layout as preprocess_eval. Every random number is
// Philox::uniform(key, k) at a fixed k, so the result is a pure function of (image, pre, key)
// on any thread. The counters: 4t .. 4t + 3 for crop try t (area, log-ratio, top, left;
// t < 10), 40 .. 42 the jitter order, 43 .. 46 the brightness, contrast, saturation and hue
// factors, 47 the flip. A setting that is off leaves the other draws where they were.
void preprocess_train(const Image& image, const Preprocess& pre, uint64_t key, float* out);

// The random resized crop box preprocess_train uses for an image of width x height.
Box random_resized_crop_box(int64_t width, int64_t height, const Preprocess& pre, uint64_t key);

// One colour jitter draw, applied to HWC RGB floats in [0, 1] (clamped to [0, 1] after each
// step, as torchvision does). A neutral factor (1, or a hue shift of 0) skips its step.
struct ColorJitter {
  float brightness = 1, contrast = 1, saturation = 1, hue = 0;
  std::array<int, 4> order = {0, 1, 2, 3};  // 0 brightness, 1 contrast, 2 saturation, 3 hue
};
void apply_color_jitter(float* rgb, int64_t pixels, const ColorJitter& jitter);

}  // namespace mmgrad::data
