// Views: new geometry over the same storage, no copies (reshape copies only when it must).
// Values are checked both through to_vector and by reading the storage directly.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

namespace {
// 0, 1, ..., n-1 as f32 in `shape`.
Tensor iota(const Shape& shape) { return arange(0, static_cast<double>(numel_of(shape))).reshape(shape); }

void expect_view_of(const Tensor& v, const Tensor& base, const std::vector<float>& want) {
  EXPECT_TRUE(v.shares_storage(base));
  EXPECT_EQ(strided_values<float>(v), want);
  EXPECT_EQ(fvec(v), want);
}
}  // namespace

TEST(Reshape, ContiguousIsAView) {
  Tensor a = iota({2, 3, 4});
  Tensor r = a.reshape({6, 4});
  EXPECT_EQ(r.shape(), (Shape{6, 4}));
  EXPECT_EQ(r.strides(), (Shape{4, 1}));
  expect_view_of(r, a, fvec(a));
  Tensor r2 = a.reshape({4, -1});
  EXPECT_EQ(r2.shape(), (Shape{4, 6}));
  EXPECT_TRUE(r2.shares_storage(a));
  Tensor flat = a.reshape({-1});
  EXPECT_EQ(flat.shape(), (Shape{24}));
  EXPECT_TRUE(flat.shares_storage(a));
  Tensor s = scalar_tensor(4).reshape({1, 1});
  EXPECT_EQ(s.shape(), (Shape{1, 1}));
  EXPECT_EQ(s.reshape({}).dim(), 0);
}

TEST(Reshape, TransposedNeedsACopy) {
  Tensor a = iota({2, 3});
  Tensor t = a.t();  // [[0,3],[1,4],[2,5]]
  Tensor r = t.reshape({6});
  EXPECT_FALSE(r.shares_storage(a));
  EXPECT_TRUE(r.is_contiguous());
  EXPECT_EQ(fvec(r), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // The copy is detached from the original: writing the original does not change it.
  fill_(a, 9.0);
  EXPECT_EQ(fvec(r), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Reshape, NonContiguousButCompatibleStaysAView) {
  Tensor a = iota({2, 3});
  Tensor t = a.t();  // [3, 2], strides [1, 3]
  // Adding or removing size-1 dims never needs a copy.
  Tensor r = t.reshape({3, 1, 2});
  EXPECT_TRUE(r.shares_storage(a));
  EXPECT_EQ(fvec(r), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  // Splitting a dim of a transposed tensor is a view too.
  Tensor b = iota({4, 3}).t();  // [3, 4] strides [1, 3]
  Tensor split = b.reshape({3, 2, 2});
  EXPECT_TRUE(split.shares_storage(b));
  EXPECT_EQ(split.strides(), (Shape{1, 6, 3}));
  EXPECT_EQ(fvec(split), fvec(b));
  // Merging the contiguous inner dims of a row-sliced tensor works as a view.
  Tensor c = iota({4, 2, 3}).narrow(0, 1, 2);
  Tensor m = c.reshape({2, 6});
  EXPECT_TRUE(m.shares_storage(c));
  EXPECT_EQ(fvec(m), (std::vector<float>{6, 7, 8, 9, 10, 11, 12, 13, 14, 15, 16, 17}));
  // Merging across a gap (columns sliced) is not: it copies, with the right values.
  Tensor d = iota({3, 4}).narrow(1, 1, 2);  // [[1,2],[5,6],[9,10]]
  Tensor md = d.reshape({6});
  EXPECT_FALSE(md.shares_storage(d));
  EXPECT_EQ(fvec(md), (std::vector<float>{1, 2, 5, 6, 9, 10}));
}

TEST(Reshape, Errors) {
  Tensor a = iota({2, 3});
  EXPECT_MMGRAD_ERROR(a.reshape({4, 2}), "reshape", "[4, 2]", "8 elements", "6");
  EXPECT_MMGRAD_ERROR(a.reshape({-1, -1}), "reshape", "only one dimension can be -1");
  EXPECT_MMGRAD_ERROR(a.reshape({4, -1}), "reshape", "cannot infer -1", "f32[2, 3] cpu");
}

TEST(View, ViewSharesAndRefusesWhenImpossible) {
  Tensor a = iota({2, 3});
  Tensor v = a.view({3, 2});
  expect_view_of(v, a, {0, 1, 2, 3, 4, 5});
  EXPECT_MMGRAD_ERROR(a.t().view({6}), "view", "without a copy", "reshape()", "f32[3, 2] cpu");
  EXPECT_MMGRAD_ERROR(iota({3, 4}).narrow(1, 1, 2).view({6}), "view", "without a copy");
  EXPECT_MMGRAD_ERROR(iota({2, 3, 4}).permute({1, 0, 2}).view({6, 4}), "view", "without a copy");
  // Writes through a view show in the base.
  fill_(v, 1.0);
  EXPECT_EQ(fvec(a), (std::vector<float>(6, 1.0f)));
}

TEST(View, StridedOneDimCanBeSplit) {
  Tensor s = slice(iota({8}), 0, 0, 8, 2);  // [0, 2, 4, 6], stride 2
  Tensor v = s.view({2, 2});
  EXPECT_TRUE(v.shares_storage(s));
  EXPECT_EQ(v.strides(), (Shape{4, 2}));
  EXPECT_EQ(fvec(v), (std::vector<float>{0, 2, 4, 6}));
}

TEST(Flatten, MergesARangeOfDims) {
  Tensor a = iota({2, 3, 4});
  Tensor f = flatten(a);
  EXPECT_EQ(f.shape(), (Shape{24}));
  EXPECT_TRUE(f.shares_storage(a));
  EXPECT_EQ(flatten(a, 1).shape(), (Shape{2, 12}));
  EXPECT_EQ(flatten(a, 0, 1).shape(), (Shape{6, 4}));
  EXPECT_EQ(flatten(a, -2, -1).shape(), (Shape{2, 12}));
  EXPECT_EQ(flatten(a, 1, 1).shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(flatten(scalar_tensor(2)).shape(), (Shape{1}));
  EXPECT_MMGRAD_ERROR(flatten(a, 2, 1), "flatten", "start_dim");
  EXPECT_MMGRAD_ERROR(flatten(a, 0, 3), "flatten", "dim 3");
  // Flattening a transposed tensor copies and keeps the logical order.
  Tensor ft = flatten(iota({2, 3}).t());
  EXPECT_EQ(fvec(ft), (std::vector<float>{0, 3, 1, 4, 2, 5}));
}

TEST(Transpose, SwapsShapeAndStrides) {
  Tensor a = iota({2, 3, 4});
  Tensor t = a.transpose(0, 2);
  EXPECT_EQ(t.shape(), (Shape{4, 3, 2}));
  EXPECT_EQ(t.strides(), (Shape{1, 4, 12}));
  EXPECT_EQ(t.offset(), 0);
  EXPECT_TRUE(t.shares_storage(a));
  // t[i][j][k] = a[k][j][i] = 12k + 4j + i
  std::vector<float> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 3; ++j)
      for (int k = 0; k < 2; ++k) want.push_back(static_cast<float>(12 * k + 4 * j + i));
  EXPECT_EQ(fvec(t), want);
  EXPECT_EQ(strided_values<float>(t), want);
  EXPECT_EQ(a.transpose(-1, 0).shape(), (Shape{4, 3, 2}));
  Tensor m = iota({2, 3});
  EXPECT_EQ(m.t().shape(), (Shape{3, 2}));
  EXPECT_EQ(fvec(m.t().t()), fvec(m));
  EXPECT_MMGRAD_ERROR(a.transpose(0, 3), "transpose", "dim 3");
}

TEST(Permute, ReordersDims) {
  Tensor a = iota({2, 3, 4});
  Tensor p = a.permute({2, 0, 1});
  EXPECT_EQ(p.shape(), (Shape{4, 2, 3}));
  EXPECT_EQ(p.strides(), (Shape{1, 12, 4}));
  EXPECT_TRUE(p.shares_storage(a));
  // p[i][j][k] = a[j][k][i]
  std::vector<float> want;
  for (int i = 0; i < 4; ++i)
    for (int j = 0; j < 2; ++j)
      for (int k = 0; k < 3; ++k) want.push_back(static_cast<float>(12 * j + 4 * k + i));
  EXPECT_EQ(fvec(p), want);
  EXPECT_EQ(fvec(a.permute({-1, 0, 1})), want);
  EXPECT_MMGRAD_ERROR(a.permute({0, 1}), "permute", "2 dims given for a tensor with 3");
  EXPECT_MMGRAD_ERROR(a.permute({0, 1, 1}), "permute", "repeats");
  EXPECT_MMGRAD_ERROR(a.permute({0, 1, 5}), "permute", "dim 5");
}

TEST(Narrow, SelectsARange) {
  Tensor a = iota({4, 3});
  Tensor n = a.narrow(0, 1, 2);
  EXPECT_EQ(n.shape(), (Shape{2, 3}));
  EXPECT_EQ(n.offset(), 3);
  expect_view_of(n, a, {3, 4, 5, 6, 7, 8});
  Tensor c = a.narrow(1, 2, 1);
  EXPECT_EQ(c.shape(), (Shape{4, 1}));
  EXPECT_EQ(c.offset(), 2);
  expect_view_of(c, a, {2, 5, 8, 11});
  Tensor neg = a.narrow(0, -1, 1);  // negative start counts from the end
  expect_view_of(neg, a, {9, 10, 11});
  EXPECT_EQ(a.narrow(0, 4, 0).numel(), 0);
  EXPECT_MMGRAD_ERROR(a.narrow(0, 3, 2), "narrow", "[3, 5)", "size 4");
  EXPECT_MMGRAD_ERROR(a.narrow(1, 0, -1), "narrow");
  EXPECT_MMGRAD_ERROR(a.narrow(2, 0, 1), "narrow", "dim 2");
}

TEST(Slice, WithStep) {
  Tensor a = iota({10});
  Tensor s = slice(a, 0, 1, 8, 3);
  EXPECT_EQ(s.shape(), (Shape{3}));
  EXPECT_EQ(s.strides(), (Shape{3}));
  EXPECT_EQ(s.offset(), 1);
  expect_view_of(s, a, {1, 4, 7});
  expect_view_of(slice(a, 0, 0, 10, 4), a, {0, 4, 8});
  expect_view_of(slice(a, 0, -3, 10), a, {7, 8, 9});
  expect_view_of(slice(a, 0, 2, -5, 2), a, {2, 4});
  expect_view_of(slice(a, 0, 5, 100), a, {5, 6, 7, 8, 9});  // end is clamped
  EXPECT_EQ(slice(a, 0, 7, 3).numel(), 0);                  // empty when end < start
  Tensor m = iota({3, 5});
  Tensor cols = slice(m, 1, 0, 5, 2);
  EXPECT_EQ(cols.shape(), (Shape{3, 3}));
  EXPECT_EQ(cols.strides(), (Shape{5, 2}));
  expect_view_of(cols, m, {0, 2, 4, 5, 7, 9, 10, 12, 14});
  // A slice of a slice composes steps and offsets.
  Tensor ss = slice(slice(a, 0, 1, 10, 2), 0, 1, 5, 2);  // [1,3,5,7,9] -> [3, 7]
  EXPECT_EQ(ss.strides(), (Shape{4}));
  expect_view_of(ss, a, {3, 7});
  EXPECT_MMGRAD_ERROR(slice(a, 0, 0, 5, 0), "slice", "step must be positive");
  EXPECT_MMGRAD_ERROR(slice(a, 0, 0, 5, -1), "slice", "step");
}

TEST(Select, RemovesTheDim) {
  Tensor a = iota({3, 4});
  Tensor r = select(a, 0, 1);
  EXPECT_EQ(r.shape(), (Shape{4}));
  expect_view_of(r, a, {4, 5, 6, 7});
  Tensor c = select(a, 1, -1);
  EXPECT_EQ(c.shape(), (Shape{3}));
  EXPECT_EQ(c.strides(), (Shape{4}));
  expect_view_of(c, a, {3, 7, 11});
  Tensor s = select(select(a, 0, 2), 0, 1);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.item(), 9.0);
  EXPECT_MMGRAD_ERROR(select(a, 0, 3), "select", "index 3", "size 3");
  EXPECT_MMGRAD_ERROR(select(a, 1, -5), "select", "index -5");
}

TEST(Expand, UsesStrideZero) {
  Tensor col = iota({3, 1});
  Tensor e = col.expand({3, 4});
  EXPECT_EQ(e.shape(), (Shape{3, 4}));
  EXPECT_EQ(e.strides(), (Shape{1, 0}));
  expect_view_of(e, col, {0, 0, 0, 0, 1, 1, 1, 1, 2, 2, 2, 2});
  Tensor row = iota({3});
  Tensor lead = row.expand({2, 3});  // a new leading dim
  EXPECT_EQ(lead.strides(), (Shape{0, 1}));
  expect_view_of(lead, row, {0, 1, 2, 0, 1, 2});
  Tensor keep = col.expand({2, -1, 2});  // -1 keeps the size
  EXPECT_EQ(keep.shape(), (Shape{2, 3, 2}));
  EXPECT_EQ(fvec(keep), (std::vector<float>{0, 0, 1, 1, 2, 2, 0, 0, 1, 1, 2, 2}));
  EXPECT_TRUE(col.expand({3, 1}).is_same(col));  // nothing to do
  Tensor s = scalar_tensor(7).expand({2, 2});
  EXPECT_EQ(fvec(s), (std::vector<float>(4, 7.0f)));
  // An expanded view materialised by contiguous() has real copies.
  Tensor m = e.contiguous();
  EXPECT_FALSE(m.shares_storage(col));
  EXPECT_EQ(m.strides(), (Shape{4, 1}));
  EXPECT_EQ(fvec(m), fvec(e));
  EXPECT_MMGRAD_ERROR(iota({3, 2}).expand({3, 4}), "expand", "cannot expand size 2 to 4");
  EXPECT_MMGRAD_ERROR(iota({3, 2}).expand({2}), "expand", "fewer dims");
  EXPECT_MMGRAD_ERROR(row.expand({-1, 3}), "expand", "-1");
}

TEST(SqueezeUnsqueeze, AddAndRemoveUnitDims) {
  Tensor a = iota({3, 4});
  Tensor u0 = a.unsqueeze(0);
  EXPECT_EQ(u0.shape(), (Shape{1, 3, 4}));
  expect_view_of(u0, a, fvec(a));
  EXPECT_EQ(a.unsqueeze(1).shape(), (Shape{3, 1, 4}));
  EXPECT_EQ(a.unsqueeze(2).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(a.unsqueeze(-1).shape(), (Shape{3, 4, 1}));
  EXPECT_EQ(a.unsqueeze(-3).shape(), (Shape{1, 3, 4}));
  EXPECT_EQ(scalar_tensor(1).unsqueeze(0).shape(), (Shape{1}));
  EXPECT_MMGRAD_ERROR(a.unsqueeze(3), "unsqueeze", "dim 3");
  Tensor s = u0.squeeze(0);
  EXPECT_EQ(s.shape(), (Shape{3, 4}));
  EXPECT_TRUE(s.shares_storage(a));
  EXPECT_EQ(a.unsqueeze(1).squeeze(-2).shape(), (Shape{3, 4}));
  Tensor same = a.squeeze(0);  // size 3: left alone, as in PyTorch
  EXPECT_EQ(same.shape(), (Shape{3, 4}));
  EXPECT_MMGRAD_ERROR(a.squeeze(2), "squeeze", "dim 2");
  // Squeezing and unsqueezing a non-contiguous tensor keeps its values.
  Tensor t = a.t().unsqueeze(1);
  EXPECT_EQ(t.shape(), (Shape{4, 1, 3}));
  EXPECT_TRUE(t.shares_storage(a));
  EXPECT_EQ(fvec(t.squeeze(1)), fvec(a.t()));
}

TEST(Contiguous, ReturnsSameTensorWhenAlreadyContiguous) {
  Tensor a = iota({2, 3});
  EXPECT_TRUE(a.contiguous().is_same(a));
  Tensor rows = a.narrow(0, 1, 1);
  EXPECT_TRUE(rows.contiguous().is_same(rows));
  Tensor t = a.t();
  Tensor c = t.contiguous();
  EXPECT_FALSE(c.is_same(t));
  EXPECT_FALSE(c.shares_storage(a));
  EXPECT_TRUE(c.is_contiguous());
  EXPECT_EQ(c.strides(), (Shape{2, 1}));
  EXPECT_EQ(strided_values<float>(c), (std::vector<float>{0, 3, 1, 4, 2, 5}));
  EXPECT_TRUE(c.contiguous().is_same(c));
}

TEST(ViewChains, NonContiguousChainsGiveTheRightValues) {
  Tensor a = iota({2, 3, 4});  // a[i][j][k] = 12i + 4j + k
  // p[k][i][j] = a[i][j][k]; slice k in {1, 3}; select j = 1 -> [2 (k), 2 (i)]; transpose -> [i][k]
  Tensor v = select(slice(a.permute({2, 0, 1}), 0, 1, 4, 2), 2, 1).transpose(0, 1);
  EXPECT_EQ(v.shape(), (Shape{2, 2}));
  EXPECT_TRUE(v.shares_storage(a));
  // v[i][kk] = a[i][1][1 + 2 kk] = 12i + 4 + 1 + 2kk
  const std::vector<float> want{5, 7, 17, 19};
  EXPECT_EQ(fvec(v), want);
  EXPECT_EQ(strided_values<float>(v), want);
  // Further views keep working, and reshape of this non-contiguous view copies.
  Tensor e = v.unsqueeze(0).expand({3, 2, 2});
  EXPECT_EQ(fvec(e), (std::vector<float>{5, 7, 17, 19, 5, 7, 17, 19, 5, 7, 17, 19}));
  Tensor r = v.reshape({4});
  EXPECT_EQ(fvec(r), want);
  // Reversed traversal through negative dims.
  Tensor w = a.narrow(-1, 1, 3).transpose(-1, -3).narrow(1, 2, 1);  // [3 (k), 1 (j=2), 2 (i)]
  EXPECT_EQ(w.shape(), (Shape{3, 1, 2}));
  EXPECT_EQ(fvec(w), (std::vector<float>{9, 21, 10, 22, 11, 23}));
}

TEST(ViewChains, WritesThroughViewsReachTheBase) {
  Tensor a = zeros({3, 4});
  Tensor col = select(a, 1, 2);
  fill_(col, 5.0);
  Tensor diag_block = a.narrow(0, 1, 2).narrow(1, 0, 2).t();
  copy_(diag_block, f32({1, 2, 3, 4}, {2, 2}));  // diag_block[i][j] = a[1 + j][i]
  EXPECT_EQ(fvec(a), (std::vector<float>{0, 0, 5, 0, 1, 3, 5, 0, 2, 4, 5, 0}));
  Tensor every_other = slice(a.reshape({12}), 0, 0, 12, 2);
  add_(every_other, 10.0);
  EXPECT_EQ(fvec(a), (std::vector<float>{10, 0, 15, 0, 11, 3, 15, 0, 12, 4, 15, 0}));
}

TEST(ViewChains, ArithmeticOnNonContiguousInputs) {
  Tensor a = iota({3, 4});
  Tensor t = a.t();                      // [4, 3]
  Tensor s = slice(a, 1, 0, 4, 2).t();   // [2, 3]: rows k = 0, 2
  Tensor sum_ts = add(t.narrow(0, 0, 2), s);
  // t[r][c] = a[c][r]; s[r][c] = a[c][2r]
  std::vector<float> want;
  for (int r = 0; r < 2; ++r)
    for (int c = 0; c < 3; ++c) want.push_back(static_cast<float>(4 * c + r + 4 * c + 2 * r));
  EXPECT_EQ(fvec(sum_ts), want);
  EXPECT_EQ(sum(t).item(), 66.0);
  EXPECT_EQ(fvec(sum(s, {1})), (std::vector<float>{12, 18}));
}
