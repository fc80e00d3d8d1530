#include "data/shapes.h"

#include <algorithm>
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
  int pick(int n) { return std::min(n - 1, static_cast<int>(uniform() * n)); }
  template <typename T>
  const T& choose(const std::vector<T>& v) { return v[pick(static_cast<int>(v.size()))]; }

 private:
  uint64_t key_;
  uint64_t counter_ = 0;
};

bool inside(const ShapeObject& o, float x, float y) {
  const float dx = x - o.cx, dy = y - o.cy;
  switch (o.shape) {
    case ShapeKind::Circle: return dx * dx + dy * dy <= o.r * o.r;
    case ShapeKind::Square: return std::abs(dx) <= o.r * 0.85f && std::abs(dy) <= o.r * 0.85f;
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


std::string describe_object(const ShapeObject& o, SampleRng& rng, bool with_size) {
  std::string s = rng.pick(3) == 0 ? "the " : "a ";
  if (with_size) s += o.large ? rng.choose<std::string>({"large ", "big "}) : rng.choose<std::string>({"small ", "little "});
  return s + colour_names()[o.colour] + " " + rng.choose(shape_synonyms()[static_cast<int>(o.shape)]);
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

std::vector<std::string> class_prompts(int colour, ShapeKind shape) {
  std::vector<std::string> out;
  const std::string& c = colour_names()[static_cast<size_t>(colour)];
  for (const std::string& word : shape_synonyms()[static_cast<int>(shape)])
    for (const char* t : {"a ", "the ", "a picture of a ", "there is a ", "a small ", "a large "})
      out.push_back(t + c + " " + word);
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
    o.r = S * (o.large ? 0.26f : 0.17f) * (n_objects == 2 ? 0.8f : 1.0f);
    return o;
  };
  // Held-out samples have a held-out pair as their first object; training samples have none.
  for (int k = 0; k < n_objects; ++k) out.objects.push_back(draw_object(split_ == Split::HeldOut && k == 0));

  std::string where;
  if (n_objects == 1) {
    ShapeObject& o = out.objects[0];
    const int place = rng.pick(5);  // centre, left, right, top, bottom
    const float margin = o.r + 1, mid = S / 2;
    const float jitter = (static_cast<float>(rng.uniform()) - 0.5f) * S * 0.1f;
    const float lo = margin + S * 0.02f, hi = S - margin - S * 0.02f;
    o.cx = place == 1 ? lo : place == 2 ? hi : mid + jitter;
    o.cy = place == 3 ? lo : place == 4 ? hi : mid - jitter;
    static const char* kPlace[] = {"in the middle", "on the left", "on the right", "at the top", "at the bottom"};
    where = kPlace[place];
  } else {
    // Side by side or one above the other, in either order.
    const bool horizontal = rng.uniform() < 0.5, first_before = rng.uniform() < 0.5;
    ShapeObject &a = out.objects[0], &b = out.objects[1];
    const float near = S * 0.27f, far = S * 0.73f, mid = S / 2;
    if (horizontal) {
      a.cx = first_before ? near : far;
      b.cx = first_before ? far : near;
      a.cy = b.cy = mid;
      out.relation = first_before ? ShapesSample::Relation::LeftOf : ShapesSample::Relation::RightOf;
    } else {
      a.cy = first_before ? near : far;
      b.cy = first_before ? far : near;
      a.cx = b.cx = mid;
      out.relation = first_before ? ShapesSample::Relation::Above : ShapesSample::Relation::Below;
    }
  }

  // Render: a dark background with a little noise, objects painted in order. Without an
  // image, the noise draws are skipped so that the caption is the same either way.
  if (!render_image) rng.skip(static_cast<uint64_t>(3 * image_size_ * image_size_));
  std::vector<float> pixels(render_image ? 3 * image_size_ * image_size_ : 0);
  for (int64_t y = 0; y < image_size_ && render_image; ++y)
    for (int64_t x = 0; x < image_size_; ++x) {
      float rgb[3] = {0.08f, 0.08f, 0.10f};
      for (const ShapeObject& o : out.objects)
        if (inside(o, static_cast<float>(x) + 0.5f, static_cast<float>(y) + 0.5f))
          for (int c = 0; c < 3; ++c) rgb[c] = kRgb[o.colour][c];
      for (int c = 0; c < 3; ++c) {
        float noise = (static_cast<float>(rng.uniform()) - 0.5f) * 0.06f;
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
