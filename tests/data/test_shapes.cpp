// The built-in shapes dataset: deterministic, held-out combinations respected, and images
// that show what the captions say.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "autograd/ops.h"
#include "data/shapes.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::data;

namespace {
// The pixel colour at (x, y).
std::array<float, 3> pixel(const Tensor& img, int64_t x, int64_t y) {
  const float* p = img.data_ptr<float>();
  const int64_t S = img.shape()[1];
  return {p[(0 * S + y) * S + x], p[(1 * S + y) * S + x], p[(2 * S + y) * S + x]};
}
}  // namespace

TEST(Shapes, SamplesAreDeterministicAndIndependentOfOrder) {
  ShapesDataset a(Split::Train, 100, 7), b(Split::Train, 100, 7), c(Split::Train, 100, 8);
  ShapesSample late = a.get(42);
  for (int64_t i = 0; i < 42; ++i) a.get(i);
  ShapesSample again = b.get(42);
  EXPECT_EQ(late.caption, again.caption);
  EXPECT_TRUE(allclose(late.image, again.image, 0, 0));
  int differ = 0;
  for (int64_t i = 0; i < 20; ++i) differ += a.get(i).caption != c.get(i).caption;
  EXPECT_GT(differ, 10);  // another seed gives other data
}

TEST(Shapes, HeldOutCombinationsNeverAppearInTraining) {
  ShapesDataset train(Split::Train, 2000, 1), held(Split::HeldOut, 300, 1);
  std::set<std::pair<int, int>> seen;
  for (int64_t i = 0; i < train.size(); ++i)
    for (const ShapeObject& o : train.get(i).objects) {
      EXPECT_FALSE(is_held_out(o.colour, o.shape)) << "train sample " << i;
      seen.insert({o.colour, static_cast<int>(o.shape)});
    }
  // Every other combination does appear, so every colour and shape is learnable.
  EXPECT_EQ(seen.size(), static_cast<size_t>(kNumColours * kNumShapes - 4));
  for (int64_t i = 0; i < held.size(); ++i) {
    const ShapesSample s = held.get(i);
    EXPECT_TRUE(is_held_out(s.objects[0].colour, s.objects[0].shape)) << "held-out sample " << i;
  }
}

TEST(Shapes, ImagesShowTheCaptionedObjects) {
  ShapesDataset ds(Split::Train, 300, 3, 32);
  int one = 0, two = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    ShapesSample s = ds.get(i);
    EXPECT_EQ(s.image.shape(), (Shape{3, 32, 32}));
    for (const ShapeObject& o : s.objects) {
      // The centre pixel has the object's shade (within the +-0.03 noise), and the caption
      // names its colour.
      auto rgb = pixel(s.image, static_cast<int64_t>(o.cx), static_cast<int64_t>(o.cy + (o.shape == ShapeKind::Triangle ? o.r / 2 : 0)));
      for (int c = 0; c < 3; ++c) EXPECT_NEAR(rgb[c], o.rgb[c], 0.0301) << "sample " << i << " " << s.caption;
      const std::string& colour = colour_names()[o.colour];
      EXPECT_NE(s.caption.find(colour), std::string::npos) << s.caption;
      float brightest = std::max({rgb[0], rgb[1], rgb[2]});
      EXPECT_GT(brightest, 0.5f) << "sample " << i << " " << s.caption;
    }
    if (s.objects.size() == 1) {
      ++one;
    } else {
      ++two;
      const ShapeObject &a = s.objects[0], &b = s.objects[1];
      switch (s.relation) {
        case ShapesSample::Relation::LeftOf: EXPECT_LT(a.cx, b.cx); EXPECT_NE(s.caption.find("left of"), std::string::npos); break;
        case ShapesSample::Relation::RightOf: EXPECT_GT(a.cx, b.cx); EXPECT_NE(s.caption.find("right of"), std::string::npos); break;
        case ShapesSample::Relation::Above: EXPECT_LT(a.cy, b.cy); EXPECT_TRUE(s.caption.find("above") != std::string::npos || s.caption.find("over") != std::string::npos); break;
        case ShapesSample::Relation::Below: EXPECT_GT(a.cy, b.cy); EXPECT_TRUE(s.caption.find("below") != std::string::npos || s.caption.find("under") != std::string::npos || s.caption.find("beneath") != std::string::npos); break;
        default: ADD_FAILURE() << "two objects without a relation";
      }
    }
  }
  EXPECT_GT(one, 100);
  EXPECT_GT(two, 100);
}

TEST(Shapes, CaptionsVary) {
  ShapesDataset ds(Split::Train, 400, 4);
  std::set<std::string> first_words;
  std::set<std::string> captions;
  for (int64_t i = 0; i < ds.size(); ++i) {
    std::string c = ds.get(i).caption;
    captions.insert(c);
    first_words.insert(c.substr(0, c.find(' ')));
  }
  EXPECT_GT(captions.size(), 200u);
  EXPECT_GE(first_words.size(), 3u);  // "a", "the", "there", ...
}

TEST(Shapes, SizesAndPositionsComeFromAContinuumAndObjectsStayApart) {
  // Sizes within +-10% of their class, the classes far apart; positions jittered; every
  // object inside the image; two objects never overlap along the line that joins them.
  const float S = 32;
  ShapesDataset ds(Split::Train, 600, 5, 32);
  std::set<int> radii[2], centres;
  float small_max = 0, large_min = S;
  for (int64_t i = 0; i < ds.size(); ++i) {
    const ShapesSample s = ds.get(i, false);
    const float shrink = s.objects.size() == 2 ? 0.8f : 1.0f;
    for (const ShapeObject& o : s.objects) {
      const float nominal = S * (o.large ? 0.26f : 0.17f) * shrink;
      EXPECT_GE(o.r, nominal * 0.9f - 1e-4f) << "sample " << i;
      EXPECT_LE(o.r, nominal * 1.1f + 1e-4f) << "sample " << i;
      (o.large ? large_min : small_max) = o.large ? std::min(large_min, o.r / shrink) : std::max(small_max, o.r / shrink);
      radii[o.large].insert(static_cast<int>(std::lround(o.r / shrink * 100)));
      centres.insert(static_cast<int>(std::lround(o.cx * 10)) * 1000 + static_cast<int>(std::lround(o.cy * 10)));
      EXPECT_GE(o.cx - o.r, 0) << "sample " << i;
      EXPECT_LE(o.cx + o.r, S) << "sample " << i;
      EXPECT_GE(o.cy - o.r, 0) << "sample " << i;
      EXPECT_LE(o.cy + o.r, S) << "sample " << i;
    }
    if (s.objects.size() == 2) {
      const ShapeObject &a = s.objects[0], &b = s.objects[1];
      const bool horizontal = s.relation == ShapesSample::Relation::LeftOf || s.relation == ShapesSample::Relation::RightOf;
      const float gap = horizontal ? std::abs(a.cx - b.cx) : std::abs(a.cy - b.cy);
      EXPECT_GT(gap, a.r + b.r) << "sample " << i << ": the objects touch";
    }
  }
  EXPECT_GT(radii[0].size(), 50u);
  EXPECT_GT(radii[1].size(), 50u);
  EXPECT_GT(large_min, small_max * 1.2f) << "small and large overlap";
  EXPECT_GT(centres.size(), 400u);
}

// Hue in degrees, saturation and value of an RGB colour.
std::array<double, 3> hsv(const float* rgb) {
  const double r = rgb[0], g = rgb[1], b = rgb[2], mx = std::max({r, g, b}), d = mx - std::min({r, g, b});
  double h = d == 0 ? 0 : mx == r ? (g - b) / d : mx == g ? (b - r) / d + 2 : (r - g) / d + 4;
  h = std::fmod(h * 60 + 360, 360);
  return {h, d / mx, mx};
}

double hue_distance(double a, double b) {
  const double d = std::abs(a - b);
  return std::min(d, 360 - d);
}

TEST(Shapes, ShadesVaryButStayNearestTheirOwnColour) {
  ShapesDataset ds(Split::Train, 400, 5);
  std::vector<std::array<double, 3>> base;
  for (int c = 0; c < kNumColours; ++c) base.push_back(hsv(base_rgb(c).data()));
  std::vector<std::set<int>> distinct_shades(kNumColours);
  for (int64_t i = 0; i < ds.size(); ++i)
    for (const ShapeObject& o : ds.get(i, false).objects) {
      const auto shade = hsv(o.rgb);
      const auto& own = base[static_cast<size_t>(o.colour)];
      EXPECT_LE(hue_distance(shade[0], own[0]), 6.001) << colour_names()[o.colour];
      EXPECT_GE(shade[1], own[1] * 0.7 - 1e-6);
      EXPECT_LE(shade[1], own[1] + 1e-6);
      EXPECT_GE(shade[2], own[2] * 0.75 - 1e-6);
      EXPECT_LE(shade[2], std::min(1.0, own[2] * 1.05) + 1e-6);
      // The nearest colour by hue is still its own: no shade crosses into a neighbour.
      for (int c = 0; c < kNumColours; ++c) {
        if (c == o.colour) continue;
        EXPECT_LT(hue_distance(shade[0], own[0]), hue_distance(shade[0], base[static_cast<size_t>(c)][0]));
      }
      distinct_shades[static_cast<size_t>(o.colour)].insert(static_cast<int>(o.rgb[0] * 255) * 65536 + static_cast<int>(o.rgb[1] * 255) * 256 + static_cast<int>(o.rgb[2] * 255));
    }
  for (int c = 0; c < kNumColours; ++c) EXPECT_GT(distinct_shades[static_cast<size_t>(c)].size(), 20u) << colour_names()[c];
}

TEST(Shapes, CaptionsAndPromptsUseTheRightArticle) {
  ShapesDataset ds(Split::Train, 2000, 6);
  int an_orange = 0;
  for (int64_t i = 0; i < ds.size(); ++i) {
    std::string c = " ";
    c += ds.get(i, false).caption;
    EXPECT_EQ(c.find(" a orange"), std::string::npos) << c;
    an_orange += c.find(" an orange") != std::string::npos;
    for (const char* wrong : {" an red", " an green", " an blue", " an yellow", " an purple", " an small", " an big", " an large", " an little"})
      EXPECT_EQ(c.find(wrong), std::string::npos) << c;
  }
  EXPECT_GT(an_orange, 10);
  const auto prompts = class_prompts(5, ShapeKind::Circle);  // orange
  EXPECT_NE(std::find(prompts.begin(), prompts.end(), "an orange circle"), prompts.end());
  EXPECT_NE(std::find(prompts.begin(), prompts.end(), "a picture of an orange disk"), prompts.end());
  EXPECT_NE(std::find(prompts.begin(), prompts.end(), "a small orange ball"), prompts.end());
  for (const auto& p : prompts) EXPECT_EQ(p.find("a orange"), std::string::npos) << p;
}

TEST(Shapes, BadArgumentsAreErrors) {
  EXPECT_MMGRAD_ERROR(ShapesDataset(Split::Train, 10, 0, 8), "ShapesDataset", "below 16");
  ShapesDataset ds(Split::Train, 10);
  EXPECT_MMGRAD_ERROR(ds.get(10), "ShapesDataset", "index 10");
}
