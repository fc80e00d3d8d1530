// Tensor: geometry (shape, strides, offset), contiguity, storage sharing and lifetime,
// dimension limits, and the handle semantics of Tensor.
#include <gtest/gtest.h>

#include <memory>

#include "autograd/ops.h"
#include "core/device.h"
#include "core/shape.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

TEST(Shape, NumelStridesAndStr) {
  EXPECT_EQ(numel_of({}), 1);
  EXPECT_EQ(numel_of({2, 3, 4}), 24);
  EXPECT_EQ(numel_of({2, 0, 4}), 0);
  EXPECT_EQ(contiguous_strides({2, 3, 4}), (Shape{12, 4, 1}));
  EXPECT_EQ(contiguous_strides({}), (Shape{}));
  EXPECT_EQ(contiguous_strides({5}), (Shape{1}));
  // A zero-size dim does not zero the strides of the dims before it.
  EXPECT_EQ(contiguous_strides({2, 0, 3}), (Shape{3, 3, 1}));
  EXPECT_EQ(shape_str({2, 3}), "[2, 3]");
  EXPECT_EQ(shape_str({}), "[]");
  EXPECT_EQ(shape_str({7}), "[7]");
}

TEST(Shape, Broadcasting) {
  EXPECT_EQ(broadcast_shapes({2, 3}, {3}, "t"), (Shape{2, 3}));
  EXPECT_EQ(broadcast_shapes({2, 1, 4}, {3, 1}, "t"), (Shape{2, 3, 4}));
  EXPECT_EQ(broadcast_shapes({}, {5, 2}, "t"), (Shape{5, 2}));
  EXPECT_EQ(broadcast_shapes({1}, {0}, "t"), (Shape{0}));
  EXPECT_MMGRAD_ERROR(broadcast_shapes({2, 3}, {4}, "myop"), "myop", "[2, 3]", "[4]");
}

TEST(Shape, NormalizeDim) {
  EXPECT_EQ(normalize_dim(0, 3, "t"), 0);
  EXPECT_EQ(normalize_dim(2, 3, "t"), 2);
  EXPECT_EQ(normalize_dim(-1, 3, "t"), 2);
  EXPECT_EQ(normalize_dim(-3, 3, "t"), 0);
  EXPECT_MMGRAD_ERROR(normalize_dim(3, 3, "myop"), "myop", "dim 3", "3 dims");
  EXPECT_MMGRAD_ERROR(normalize_dim(-4, 3, "myop"), "myop", "dim -4");
  EXPECT_MMGRAD_ERROR(normalize_dim(0, 0, "myop"), "myop", "0 dims");
}

TEST(Tensor, GeometryOfAFreshTensor) {
  Tensor t = Tensor::empty({2, 3, 4});
  EXPECT_TRUE(t.defined());
  EXPECT_EQ(t.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(t.strides(), (Shape{12, 4, 1}));
  EXPECT_EQ(t.offset(), 0);
  EXPECT_EQ(t.dim(), 3);
  EXPECT_EQ(t.numel(), 24);
  EXPECT_EQ(t.size(0), 2);
  EXPECT_EQ(t.size(-1), 4);
  EXPECT_EQ(t.stride(0), 12);
  EXPECT_EQ(t.stride(-2), 4);
  EXPECT_EQ(t.dtype(), DType::F32);
  EXPECT_EQ(t.device(), Device::cpu());
  EXPECT_EQ(t.element_size(), 4u);
  EXPECT_EQ(t.storage().nbytes(), 96u);
  EXPECT_TRUE(t.is_contiguous());
  EXPECT_TRUE(t.is_non_overlapping_and_dense());
  EXPECT_EQ(t.describe(), "f32[2, 3, 4] cpu");
  EXPECT_EQ(describe("x", t), "x: f32[2, 3, 4] cpu");
  EXPECT_MMGRAD_ERROR(t.size(3), "size", "dim 3");
  EXPECT_MMGRAD_ERROR(t.stride(-4), "stride", "dim -4");
}

TEST(Tensor, ZeroDimAndEmptyTensors) {
  Tensor s = scalar_tensor(3.5);
  EXPECT_EQ(s.dim(), 0);
  EXPECT_EQ(s.numel(), 1);
  EXPECT_TRUE(s.is_contiguous());
  EXPECT_EQ(s.item(), 3.5);
  Tensor e = zeros({3, 0, 2});
  EXPECT_EQ(e.numel(), 0);
  EXPECT_EQ(e.strides(), contiguous_strides({3, 0, 2}));
  // A freshly allocated tensor is contiguous, whatever its sizes (empty ones included).
  EXPECT_TRUE(e.is_contiguous()) << "strides " << shape_str(e.strides());
  EXPECT_TRUE(zeros({0, 4}).is_contiguous());
  EXPECT_TRUE(zeros({4, 0}).is_contiguous());
  // Ops that need a contiguous destination accept empty tensors.
  EXPECT_NO_THROW(rand({4, 0}));
  EXPECT_EQ(zeros({4, 0}).contiguous().numel(), 0);
  EXPECT_TRUE(fvec(e).empty());
  EXPECT_EQ(e.describe(), "f32[3, 0, 2] cpu");
}

TEST(Tensor, ContiguityOfViews) {
  Tensor a = zeros({3, 4});
  Tensor t = a.t();
  EXPECT_FALSE(t.is_contiguous());
  EXPECT_TRUE(t.is_non_overlapping_and_dense());  // a permutation of a dense block
  Tensor strided = slice(a, 1, 0, 4, 2);
  EXPECT_FALSE(strided.is_contiguous());
  EXPECT_FALSE(strided.is_non_overlapping_and_dense());
  Tensor rows = a.narrow(0, 1, 2);  // a contiguous block with an offset
  EXPECT_TRUE(rows.is_contiguous());
  EXPECT_EQ(rows.offset(), 4);
  Tensor cols = a.narrow(1, 1, 2);
  EXPECT_FALSE(cols.is_contiguous());
  Tensor ex = zeros({3, 1}).expand({3, 5});
  EXPECT_FALSE(ex.is_contiguous());
  EXPECT_FALSE(ex.is_non_overlapping_and_dense());
  // Size-1 dims do not matter for contiguity whatever their stride.
  Tensor odd = Tensor::alias(a, {1, 4}, {999, 1}, 0);
  EXPECT_TRUE(odd.is_contiguous());
  Tensor p = zeros({2, 3, 4}).permute({2, 0, 1});
  EXPECT_FALSE(p.is_contiguous());
  EXPECT_TRUE(p.is_non_overlapping_and_dense());
}

TEST(Tensor, CopyingAHandleSharesEverything) {
  Tensor a = zeros({4});
  Tensor b = a;
  EXPECT_TRUE(b.is_same(a));
  EXPECT_TRUE(b.shares_storage(a));
  b.data_ptr<float>()[2] = 5.0f;
  EXPECT_EQ(fvec(a), (std::vector<float>{0, 0, 5, 0}));
  EXPECT_EQ(a.impl_ptr().use_count(), 2);
  Tensor c = a.clone();
  EXPECT_FALSE(c.shares_storage(a));
  EXPECT_FALSE(c.is_same(a));
  EXPECT_EQ(fvec(c), fvec(a));
}

TEST(Tensor, ViewKeepsStorageAliveAfterBaseIsGone) {
  Tensor base = arange(0, 10);
  std::weak_ptr<Storage> weak = base.impl().storage;
  std::weak_ptr<TensorImpl> weak_impl = base.impl_ptr();
  EXPECT_EQ(base.impl().storage.use_count(), 1);
  Tensor v = base.narrow(0, 2, 3);
  EXPECT_TRUE(v.shares_storage(base));
  EXPECT_EQ(base.impl().storage.use_count(), 2);
  base = Tensor();
  EXPECT_TRUE(weak_impl.expired());  // the base's handle is gone ...
  ASSERT_FALSE(weak.expired());      // ... but not its storage
  EXPECT_EQ(weak.lock()->nbytes(), 40u);
  EXPECT_EQ(fvec(v), (std::vector<float>{2, 3, 4}));
  Tensor vv = v.unsqueeze(0);  // a view of a view shares the same storage
  v = Tensor();
  EXPECT_FALSE(weak.expired());
  EXPECT_EQ(fvec(vv), (std::vector<float>{2, 3, 4}));
  vv = Tensor();
  EXPECT_TRUE(weak.expired());
}

TEST(Tensor, AliasSharesStorageWithGivenGeometry) {
  Tensor a = arange(0, 12);
  Tensor v = Tensor::alias(a, {3, 2}, {1, 4}, 2);
  EXPECT_TRUE(v.shares_storage(a));
  EXPECT_EQ(v.offset(), 2);
  EXPECT_EQ(strided_values<float>(v), (std::vector<float>{2, 6, 3, 7, 4, 8}));
  EXPECT_EQ(fvec(v), (std::vector<float>{2, 6, 3, 7, 4, 8}));
  EXPECT_EQ(v.raw_data(), static_cast<void*>(a.data_ptr<float>() + 2));
  EXPECT_FALSE(v.requires_grad());
}

TEST(Tensor, VersionCounterIsPerStorage) {
  Tensor a = zeros({4});
  Tensor v = a.narrow(0, 0, 2);
  uint64_t v0 = a.version();
  a.bump_version();
  EXPECT_EQ(a.version(), v0 + 1);
  EXPECT_EQ(v.version(), v0 + 1);
  fill_(v, 2.0);  // in-place ops bump too
  EXPECT_EQ(a.version(), v0 + 2);
  EXPECT_EQ(fvec(a), (std::vector<float>{2, 2, 0, 0}));
  Tensor other = zeros({4});
  EXPECT_EQ(other.version(), 0u);
}

TEST(Tensor, EightDimsAllowedNineRefused) {
  Shape eight(8, 2);
  Tensor t = zeros(eight);
  EXPECT_EQ(t.dim(), 8);
  EXPECT_EQ(t.numel(), 256);
  Shape nine(9, 1);
  EXPECT_MMGRAD_ERROR(Tensor::empty(nine), "empty", "9 dims", "at most 8");
  EXPECT_MMGRAD_ERROR(zeros(nine), "", "at most 8");
  EXPECT_MMGRAD_ERROR(t.unsqueeze(0), "", "9 dims", "at most 8");
  const Shape nine_same_numel{2, 2, 2, 2, 2, 2, 2, 2, 1};
  EXPECT_MMGRAD_ERROR(t.reshape(nine_same_numel), "reshape", "at most 8");
  EXPECT_MMGRAD_ERROR(from_data<float>({1}, nine), "from_data", "at most 8");
  EXPECT_MMGRAD_ERROR(zeros({2}).expand(Shape(9, 2)), "expand", "at most 8");
  EXPECT_EQ(kMaxDims, 8);
}

TEST(Tensor, NegativeSizesRefused) {
  EXPECT_MMGRAD_ERROR(Tensor::empty({2, -1}), "empty", "negative size", "[2, -1]");
  EXPECT_MMGRAD_ERROR(zeros({-3}), "", "negative size");
  EXPECT_MMGRAD_ERROR(check_shape({1, -2}, "myop"), "myop", "[1, -2]");
  EXPECT_MMGRAD_ERROR(arange(0, 6).reshape({-2, -3}), "reshape", "invalid size");
}

TEST(Tensor, UndefinedHandle) {
  Tensor t;
  EXPECT_FALSE(t.defined());
  EXPECT_FALSE(t.requires_grad());
  EXPECT_EQ(t.describe(), "undefined");
  EXPECT_EQ(t.str(), "tensor(undefined)");
  EXPECT_FALSE(t.shares_storage(t));
  EXPECT_MMGRAD_ERROR(t.shape(), "tensor", "undefined");
  EXPECT_MMGRAD_ERROR(t.numel(), "tensor", "undefined");
  EXPECT_MMGRAD_ERROR(t.impl(), "tensor", "undefined");
}

TEST(Tensor, DataPtrChecksDtype) {
  Tensor t = zeros({2});
  EXPECT_NE(t.data_ptr<float>(), nullptr);
  EXPECT_MMGRAD_ERROR(t.data_ptr<double>(), "data_ptr", "requested f64 data from a f32 tensor",
                      "f32[2] cpu");
  EXPECT_MMGRAD_ERROR(zeros({1}, DType::I64).data_ptr<int32_t>(), "data_ptr", "i32", "i64");
}

TEST(Tensor, GradSlot) {
  Tensor x = zeros({2, 2});
  EXPECT_FALSE(x.grad().defined());
  Tensor g = ones({2, 2});
  x.set_grad(g);
  EXPECT_TRUE(x.grad().is_same(g));
  EXPECT_MMGRAD_ERROR(x.set_grad(ones({4})), "set_grad", "[4]", "[2, 2]");
  x.set_grad(Tensor());
  EXPECT_FALSE(x.grad().defined());
}

TEST(Device, StrAndParse) {
  EXPECT_EQ(Device::cpu().str(), "cpu");
  EXPECT_EQ(Device::cuda(1).str(), "cuda:1");
  EXPECT_EQ(Device::parse("cpu"), Device::cpu());
  EXPECT_EQ(Device::parse("cuda"), Device::cuda(0));
  EXPECT_EQ(Device::parse("cuda:3"), Device::cuda(3));
  EXPECT_MMGRAD_ERROR(Device::parse("tpu"), "Device::parse", "'tpu'");
  EXPECT_MMGRAD_ERROR(Device::parse("cuda:x"), "Device::parse", "cuda:x");
  EXPECT_MMGRAD_ERROR(Device::parse("cuda:-1"), "Device::parse");
  EXPECT_MMGRAD_ERROR(Device::parse("cuda:1x"), "Device::parse");
}

TEST(TensorLimits, ElementCountOverflowIsAnError) {
  EXPECT_MMGRAD_ERROR(mmgrad::empty({int64_t(1) << 40, int64_t(1) << 40}), "empty", "too many elements");
  EXPECT_MMGRAD_ERROR(mmgrad::zeros({int64_t(1) << 61}), "empty", "too many elements");
}

TEST(TensorLimits, HugeButValidShapeFailsAsOutOfMemory) {
  // 2^50 bytes cannot be allocated: a clear error, not a crash.
  EXPECT_MMGRAD_ERROR(mmgrad::empty({int64_t(1) << 48}), "allocate", "out of memory");
}
