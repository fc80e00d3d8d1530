// The epoch sampler and shapes batches.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "autograd/ops.h"
#include "data/sampler.h"
#include "data/shapes_batches.h"

using namespace mmgrad;
using namespace mmgrad::data;

TEST(EpochSampler, EachEpochIsAPermutationAndEpochsDiffer) {
  EpochSampler s(50, 3);
  std::vector<int64_t> e0, e1;
  for (int64_t p = 0; p < 50; ++p) e0.push_back(s.index(p));
  for (int64_t p = 50; p < 100; ++p) e1.push_back(s.index(p));
  std::vector<int64_t> sorted0 = e0, sorted1 = e1;
  std::sort(sorted0.begin(), sorted0.end());
  std::sort(sorted1.begin(), sorted1.end());
  for (int64_t i = 0; i < 50; ++i) {
    EXPECT_EQ(sorted0[i], i);
    EXPECT_EQ(sorted1[i], i);
  }
  EXPECT_NE(e0, e1);
  std::vector<int64_t> identity(50);
  for (int64_t i = 0; i < 50; ++i) identity[i] = i;
  EXPECT_NE(e0, identity);
}

TEST(EpochSampler, PositionsAreIndependentOfTheOrderOfAccess) {
  EpochSampler a(37, 9), b(37, 9), other_seed(37, 10);
  std::vector<int64_t> forward, backward(120);
  for (int64_t p = 0; p < 120; ++p) forward.push_back(a.index(p));
  for (int64_t p = 119; p >= 0; --p) backward[p] = b.index(p);  // jumps between epochs
  EXPECT_EQ(forward, backward);
  int same = 0;
  for (int64_t p = 0; p < 37; ++p) same += other_seed.index(p) == forward[p];
  EXPECT_LT(same, 10);
  EXPECT_THROW(EpochSampler(0, 1), Error);
}

TEST(ShapesBatches, BatchHoldsTheSamplesImagesAndTokens) {
  ShapesDataset ds(Split::Train, 100, 5, 32);
  std::vector<std::string> corpus;
  for (int i = 0; i < 100; ++i) corpus.push_back(ds.get(i).caption);
  BpeTokenizer tok = BpeTokenizer::train(corpus, 300);
  ImageTextBatch b = shapes_batch(ds, tok, 48, {7, 3, 99});
  ASSERT_EQ(b.images.shape(), (Shape{3, 3, 32, 32}));
  ASSERT_EQ(b.ids.shape(), (Shape{3, 48}));
  EXPECT_EQ(to_vector<float>(select(b.images, 0, 1)), to_vector<float>(ds.get(3).image));
  EXPECT_EQ(b.captions[2], ds.get(99).caption);
  const std::vector<int64_t> row = to_vector<int64_t>(select(b.ids, 0, 2));
  EXPECT_EQ(row[0], tok.start_token());
  std::vector<int64_t> body;
  for (size_t i = 1; row[i] != tok.end_token(); ++i) body.push_back(row[i]);
  EXPECT_EQ(tok.decode(body), ds.get(99).caption);
}

TEST(ShapesBatches, CaptionsWithoutRenderingMatchRenderedOnes) {
  ShapesDataset ds(Split::HeldOut, 40, 11, 32);
  for (int64_t i = 0; i < 40; ++i) {
    ShapesSample full = ds.get(i), text_only = ds.get(i, false);
    EXPECT_EQ(full.caption, text_only.caption);
    EXPECT_FALSE(text_only.image.defined());
    ASSERT_EQ(full.objects.size(), text_only.objects.size());
  }
  // The tokenizer trained for a run covers every word of the captions with few tokens.
  BpeTokenizer tok = train_shapes_tokenizer(ShapesDataset(Split::Train, 2000, 0, 32), 360, 2000);
  EXPECT_EQ(tok.vocab_size(), 360);
  const std::string caption = ds.get(0).caption;
  EXPECT_EQ(tok.decode(tok.encode(caption)), caption);
  EXPECT_LT(tok.encode(caption).size(), caption.size() / 2);
}

TEST(ShapesBatches, ContentGroupsNameTheObjectsInAnyOrder) {
  ShapesSample a, b, c;
  a.objects = {{ShapeKind::Circle, 0, true, 0, 0, 1}, {ShapeKind::Square, 2, false, 0, 0, 1}};
  b.objects = {{ShapeKind::Square, 2, true, 5, 5, 2}, {ShapeKind::Circle, 0, false, 9, 9, 1}};  // swapped, other sizes
  c.objects = {{ShapeKind::Circle, 0, true, 0, 0, 1}};
  EXPECT_EQ(content_group(a), content_group(b));
  EXPECT_NE(content_group(a), content_group(c));
  std::set<int64_t> ids;
  for (int col = 0; col < kNumColours; ++col)
    for (int sh = 0; sh < kNumShapes; ++sh) {
      ShapesSample one;
      one.objects = {{static_cast<ShapeKind>(sh), col, true, 0, 0, 1}};
      ids.insert(content_group(one));
      ShapesSample two = one;
      two.objects.push_back({ShapeKind::Diamond, 5, false, 0, 0, 1});
      ids.insert(content_group(two));
    }
  EXPECT_EQ(ids.size(), static_cast<size_t>(2 * kNumColours * kNumShapes));  // all distinct
  ShapesDataset ds(Split::Train, 10, 1, 32);
  BpeTokenizer tok;
  ImageTextBatch batch = shapes_batch(ds, tok, 64, {0, 1, 2});
  for (int i = 0; i < 3; ++i) EXPECT_EQ(batch.groups[i], content_group(ds.get(i)));
}
