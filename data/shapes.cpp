#include "data/shapes.h"

#include <algorithm>
#include <array>
#include <cmath>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/rng.h"

namespace mmgrad::data {
namespace {

const float kRgb[kNumColours][3] = {{0.90f, 0.15f, 0.15f}, {0.15f, 0.75f, 0.20f}, {0.20f, 0.35f, 0.95f},
                                    {0.95f, 0.90f, 0.15f}, {0.60f, 0.20f, 0.80f}, {0.98f, 0.55f, 0.10f}};

// A random stream for one sample: draw k is a pure function of (seed, split, index, k).
class SampleRng {
 public:
  SampleRng(uint64_t seed, Split split, int64_t index)
      : key_(Philox::block(seed ^ 0x5348415045ull, static_cast<uint64_t>(index) * 2 + (split == Split::HeldOut))[0] |
             static_cast<uint64_t>(Philox::block(seed, static_cast<uint64_t>(index))[1]) << 32) {}
  double uniform() { return Philox::uniform(key_, counter_++); }
  void skip(uint64_t draws) { counter_ += draws; }
  // The next n draws of uniform(), at once (vectorised; the same values).
  void uniform_many(int64_t n, double* out) {
    Philox::uniform_many(key_, counter_, n, out);
    counter_ += static_cast<uint64_t>(n);
  }
  int pick(int n) { return std::min(n - 1, static_cast<int>(uniform() * n)); }
  template <typename T>
  const T& choose(const std::vector<T>& v) { return v[pick(static_cast<int>(v.size()))]; }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

struct Hsv {
  double h, s, v;  // hue in turns [0, 1), saturation and value in [0, 1]
};

Hsv to_hsv(const float rgb[3]) {
  const double r = rgb[0], g = rgb[1], b = rgb[2];
  const double mx = std::max({r, g, b}), d = mx - std::min({r, g, b});
  double h = d == 0 ? 0 : mx == r ? (g - b) / d : mx == g ? (b - r) / d + 2 : (r - g) / d + 4;
  h /= 6;
  return {h - std::floor(h), mx == 0 ? 0 : d / mx, mx};
}

void to_rgb(Hsv c, float out[3]) {
  const double sector = (c.h - std::floor(c.h)) * 6, f = sector - std::floor(sector);
  const double v = c.v, p = v * (1 - c.s), q = v * (1 - c.s * f), t = v * (1 - c.s * (1 - f));
  const double table[6][3] = {{v, t, p}, {q, v, p}, {p, v, t}, {p, q, v}, {t, p, v}, {v, p, q}};
  const double* rgb = table[std::min(5, static_cast<int>(sector))];
  for (int k = 0; k < 3; ++k) out[k] = static_cast<float>(rgb[k]);
}

// Each object is painted in a shade of its colour: hue within kShadeHue of the colour's own,
// saturation scaled by [kSaturationLow, 1] and brightness by [kValueLow, 1.05]. With six exact
// RGB values the model more often ties shape to colour and misreads the held-out pairs;
// varied shades make every colour a spread of values (diversity in one attribute helps the
// other generalise: del Rio et al. 2025, "Data distributional properties as inductive bias
// for systematic generalization"). +-6 degrees keeps orange (31) apart from red (0) and
// yellow (56).
constexpr double kShadeHue = 6.0 / 360, kSaturationLow = 0.7, kValueLow = 0.75;

void shade_of(int colour, SampleRng& rng, float out[3]) {
  Hsv c = to_hsv(kRgb[colour]);
  c.h += (rng.uniform() * 2 - 1) * kShadeHue;
  c.s *= kSaturationLow + (1 - kSaturationLow) * rng.uniform();
  c.v = std::min(1.0, c.v * (kValueLow + (1.05 - kValueLow) * rng.uniform()));
  to_rgb(c, out);
}

bool inside(const ShapeObject& o, float x, float y) {
  const float dx = x - o.cx, dy = y - o.cy;
  switch (o.shape) {
    case ShapeKind::Circle: return dx * dx + dy * dy <= o.r * o.r;
    // As wide as the circle: a square of side 1.7 r (as before) differed from a small circle
    // by about a pixel at 32 px, and the held-out green square was mostly read as a circle.
    case ShapeKind::Square: return std::abs(dx) <= o.r && std::abs(dy) <= o.r;
    case ShapeKind::Diamond: return std::abs(dx) + std::abs(dy) <= o.r;
    case ShapeKind::Triangle: {
      // Pointing up: apex at (0, -r), base from (-r, r) to (r, r).
      if (dy > o.r || dy < -o.r) return false;
      const float half_width = o.r * (dy + o.r) / (2 * o.r);
      return std::abs(dx) <= half_width;
    }
  }
  return false;
}


// "an" before a vowel: "an orange box", "a red box".
std::string indefinite_article(const std::string& next_word) {
  return next_word.find_first_of("aeiou") == 0 ? "an " : "a ";
}

std::string describe_object(const ShapeObject& o, SampleRng& rng, bool with_size) {
  const bool definite = rng.pick(3) == 0;
  std::string s;
  if (with_size) s = o.large ? rng.choose<std::string>({"large ", "big "}) : rng.choose<std::string>({"small ", "little "});
  s += colour_names()[o.colour] + " " + rng.choose(shape_synonyms()[static_cast<int>(o.shape)]);
  return (definite ? "the " : indefinite_article(s)) + s;
}

}  // namespace

const std::vector<std::vector<std::string>>& shape_synonyms() {
  static const std::vector<std::vector<std::string>> s = {
      {"circle", "disk", "ball"}, {"square", "box", "block"}, {"triangle", "pyramid"}, {"diamond", "rhombus"}};
  return s;
}

const std::vector<std::string>& shape_names() {
  static const std::vector<std::string> n = {"circle", "square", "triangle", "diamond"};
  return n;
}

const std::vector<std::string>& colour_names() {
  static const std::vector<std::string> n = {"red", "green", "blue", "yellow", "purple", "orange"};
  return n;
}

std::array<float, 3> base_rgb(int colour) {
  if (colour < 0 || colour >= kNumColours) fail("base_rgb", fmt::format("no colour {}", colour));
  return {kRgb[colour][0], kRgb[colour][1], kRgb[colour][2]};
}

std::vector<std::string> class_prompts(int colour, ShapeKind shape) {
  std::vector<std::string> out;
  const std::string& c = colour_names()[static_cast<size_t>(colour)];
  for (const std::string& word : shape_synonyms()[static_cast<int>(shape)])
    for (const std::string t : {"a ", "the ", "a picture of a ", "there is a ", "a small ", "a large "})
      out.push_back((t.ends_with("a ") ? t.substr(0, t.size() - 2) + indefinite_article(c) : t) + c + " " + word);
  return out;
}

bool is_held_out(int colour, ShapeKind shape) {
  // One pair per colour, rotating through the shapes: every colour and every shape is still
  // seen in training, but never these combinations.
  return static_cast<int>(shape) == colour % kNumShapes && colour < kNumShapes;
}

ShapesDataset::ShapesDataset(Split split, int64_t size, uint64_t seed, int64_t image_size)
    : split_(split), size_(size), image_size_(image_size), seed_(seed) {
  if (size < 0) fail("ShapesDataset", "size must be non-negative");
  if (image_size < 16) fail("ShapesDataset", fmt::format("image size {} is below 16 pixels", image_size));
}

ShapesSample ShapesDataset::get(int64_t index, bool render_image) const {
  if (index < 0 || index >= size_)
    fail("ShapesDataset", fmt::format("index {} is outside a dataset of {} samples", index, size_));
  SampleRng rng(seed_, split_, index);
  const float S = static_cast<float>(image_size_);
  ShapesSample out;
  const int n_objects = rng.uniform() < 0.5 ? 1 : 2;

  auto draw_object = [&](bool must_be_held_out) {
    ShapeObject o;
    do {  // rejection: the split decides which combinations are allowed
      o.shape = static_cast<ShapeKind>(rng.pick(kNumShapes));
      o.colour = rng.pick(kNumColours);
    } while (is_held_out(o.colour, o.shape) != must_be_held_out);
    o.large = rng.uniform() < 0.5;
    shade_of(o.colour, rng, o.rgb);
    // Sizes vary by +-10% around the two classes (still far apart: at most 0.187 S small, at
    // least 0.234 S large) so that a shape is not one memorised silhouette per size.
    const float size_jitter = 0.9f + 0.2f * static_cast<float>(rng.uniform());
    o.r = S * (o.large ? 0.26f : 0.17f) * (n_objects == 2 ? 0.8f : 1.0f) * size_jitter;
    return o;
  };
  // Held-out samples have a held-out pair as their first object; training samples have none.
  for (int k = 0; k < n_objects; ++k) out.objects.push_back(draw_object(split_ == Split::HeldOut && k == 0));

  std::string where;
  if (n_objects == 1) {
    ShapeObject& o = out.objects[0];
    const int place = rng.pick(5);  // centre, left, right, top, bottom
    const float margin = o.r + 1, mid = S / 2;
    // Jitter along both axes (the edge places move along their edge) so that positions, like
    // sizes, come from a continuum rather than a handful of pixel patterns.
    const float jx = (static_cast<float>(rng.uniform()) - 0.5f) * S * 0.1f;
    const float jy = (static_cast<float>(rng.uniform()) - 0.5f) * S * 0.1f;
    const float lo = margin + S * 0.02f, hi = S - margin - S * 0.02f;
    o.cx = place == 1 ? lo : place == 2 ? hi : mid + jx;
    o.cy = place == 3 ? lo : place == 4 ? hi : mid + jy;
    static const char* kPlace[] = {"in the middle", "on the left", "on the right", "at the top", "at the bottom"};
    where = kPlace[place];
  } else {
    // Side by side or one above the other, in either order.
    const bool horizontal = rng.uniform() < 0.5, first_before = rng.uniform() < 0.5;
    ShapeObject &a = out.objects[0], &b = out.objects[1];
    // Across the line joining them, each object moves a little on its own; along it they stay
    // put so that two large objects never touch.
    const float near = S * 0.27f, far = S * 0.73f, mid = S / 2;
    const float ja = (static_cast<float>(rng.uniform()) - 0.5f) * S * 0.1f;
    const float jb = (static_cast<float>(rng.uniform()) - 0.5f) * S * 0.1f;
    if (horizontal) {
      a.cx = first_before ? near : far;
      b.cx = first_before ? far : near;
      a.cy = mid + ja;
      b.cy = mid + jb;
      out.relation = first_before ? ShapesSample::Relation::LeftOf : ShapesSample::Relation::RightOf;
    } else {
      a.cy = first_before ? near : far;
      b.cy = first_before ? far : near;
      a.cx = mid + ja;
      b.cx = mid + jb;
      out.relation = first_before ? ShapesSample::Relation::Above : ShapesSample::Relation::Below;
    }
  }

  // Render: a dark background with a little noise, objects painted in order. Without an
  // image, the noise draws are skipped so that the caption is the same either way.
  // The noise takes draws 3 (y S + x) + c, drawn up front in one batch (the per-draw Philox
  // blocks were most of the dataset's cost, 1.6% of a shapes-small training step).
  const int64_t draws = 3 * image_size_ * image_size_;
  if (!render_image) rng.skip(static_cast<uint64_t>(draws));
  std::vector<float> pixels(render_image ? draws : 0);
  // Scratch kept per thread (the loader renders on several): 24 KB a sample at 64 pixels.
  thread_local std::vector<double> uniforms;
  if (render_image) {
    uniforms.resize(static_cast<size_t>(draws));
    rng.uniform_many(draws, uniforms.data());
  }
  for (int64_t y = 0; y < image_size_ && render_image; ++y)
    for (int64_t x = 0; x < image_size_; ++x) {
      float rgb[3] = {0.08f, 0.08f, 0.10f};
      for (const ShapeObject& o : out.objects)
        if (inside(o, static_cast<float>(x) + 0.5f, static_cast<float>(y) + 0.5f))
          for (int c = 0; c < 3; ++c) rgb[c] = o.rgb[c];
      const double* u = uniforms.data() + 3 * (y * image_size_ + x);
      for (int c = 0; c < 3; ++c) {
        float noise = (static_cast<float>(u[c]) - 0.5f) * 0.06f;
        pixels[(c * image_size_ + y) * image_size_ + x] = std::clamp(rgb[c] + noise, 0.0f, 1.0f);
      }
    }
  if (render_image) out.image = from_data(pixels, {3, image_size_, image_size_});

  // Caption from one of several templates.
  if (n_objects == 1) {
    const ShapeObject& o = out.objects[0];
    switch (rng.pick(4)) {
      case 0: out.caption = describe_object(o, rng, true); break;
      case 1: out.caption = describe_object(o, rng, rng.uniform() < 0.5) + " " + where; break;
      case 2: out.caption = "there is " + describe_object(o, rng, true) + " " + where; break;
      default: out.caption = "a picture of " + describe_object(o, rng, false); break;
    }
  } else {
    static const std::vector<std::vector<std::string>> kRelation = {
        {}, {"left of", "to the left of"}, {"right of", "to the right of"}, {"above", "over"}, {"below", "under", "beneath"}};
    const auto& words = kRelation[static_cast<int>(out.relation)];
    out.caption = describe_object(out.objects[0], rng, rng.uniform() < 0.3) + " " + rng.choose(words) + " " +
                  describe_object(out.objects[1], rng, rng.uniform() < 0.3);
  }
  return out;
}

}  // namespace mmgrad::data
