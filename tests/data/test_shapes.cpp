// The built-in shapes dataset: deterministic, held-out combinations respected, and images
// that show what the captions say.
#include <gtest/gtest.h>

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
      // The centre pixel has the object's colour (within the noise), and the caption names it.
      auto rgb = pixel(s.image, static_cast<int64_t>(o.cx), static_cast<int64_t>(o.cy + (o.shape == ShapeKind::Triangle ? o.r / 2 : 0)));
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

TEST(Shapes, BadArgumentsAreErrors) {
  EXPECT_MMGRAD_ERROR(ShapesDataset(Split::Train, 10, 0, 8), "ShapesDataset", "below 16");
  ShapesDataset ds(Split::Train, 10);
  EXPECT_MMGRAD_ERROR(ds.get(10), "ShapesDataset", "index 10");
}
