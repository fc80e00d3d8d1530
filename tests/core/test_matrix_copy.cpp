// core/matrix_copy.h: the layout mixed precision copies GEMM operands into. For every kind of
// view a GEMM is handed, the copy holds the same values, each matrix is dense in the memory
// order it had (row-major stays row-major, a transposed view stays column-major), the batch
// is walked by one stride (0 when one matrix is broadcast, which is then copied once), and
// the copy holds no more elements than it needs.
#include <gtest/gtest.h>

#include <string>
#include <vector>

#include "autograd/ops.h"
#include "backends/cpu/kernels.h"
#include "core/matrix_copy.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

namespace {

// The storage elements a tensor's strides reach (its span), for a view at offset 0.
int64_t span(const Tensor& t) {
  int64_t last = 0;
  for (int d = 0; d < t.dim(); ++d) last += (t.shape()[d] - 1) * t.strides()[d];
  return t.numel() ? last + 1 : 0;
}

void expect_gemm_ready_copy(const Tensor& t, bool transposed, bool broadcast_batch, const std::string& what) {
  const Tensor c = copy_as_matrices(t, DType::F64, cpu::copy);
  ASSERT_EQ(c.shape(), t.shape()) << what;
  EXPECT_EQ(c.dtype(), DType::F64) << what;
  EXPECT_EQ(to_vector<double>(c), to_vector<double>(t.to(DType::F64))) << what;
  const int nd = t.dim();
  const int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  if (transposed) {
    EXPECT_EQ(c.strides()[nd - 2], 1) << what;
    EXPECT_EQ(c.strides()[nd - 1], rows) << what;
  } else {
    EXPECT_EQ(c.strides()[nd - 2], cols) << what;
    EXPECT_EQ(c.strides()[nd - 1], 1) << what;
  }
  // The batch: row-major over the copy's matrices, or all 0 when broadcast.
  int64_t expected = rows * cols;
  for (int d = nd - 3; d >= 0; --d) {
    if (broadcast_batch) {
      EXPECT_EQ(c.strides()[d], 0) << what << ", batch dim " << d;
    } else {
      EXPECT_EQ(c.strides()[d], expected) << what << ", batch dim " << d;
      expected *= t.shape()[d];
    }
  }
  EXPECT_EQ(span(c), broadcast_batch ? rows * cols : t.numel()) << what << ": elements the copy holds";
}

TEST(MatrixCopy, EveryViewAGemmIsHandedComesBackDenseInItsMemoryOrder) {
  Generator gen(2);
  auto r = [&](const Shape& s) { return randn(s, DType::F32, Device::cpu(), &gen); };
  expect_gemm_ready_copy(r({5, 7}), false, false, "a row-major matrix");
  expect_gemm_ready_copy(r({7, 5}).transpose(0, 1), true, false, "a transposed view");
  expect_gemm_ready_copy(r({3, 5, 7}), false, false, "a batch");
  expect_gemm_ready_copy(r({3, 7, 5}).transpose(1, 2), true, false, "a batch of transposed views");
  expect_gemm_ready_copy(r({5, 7}).expand({4, 5, 7}), false, true, "one matrix broadcast over a batch");
  expect_gemm_ready_copy(r({7, 5}).transpose(0, 1).expand({2, 3, 5, 7}), true, true,
                         "a transposed matrix broadcast over two batch dims");
  expect_gemm_ready_copy(r({2, 9, 4, 16}).permute({0, 2, 1, 3}), false, false, "attention's head views");
  expect_gemm_ready_copy(r({2, 9, 4, 16}).permute({0, 2, 3, 1}), true, false, "K^T head views");
  expect_gemm_ready_copy(narrow(r({6, 10}), 1, 2, 7), false, false, "rows of a wider matrix");
  expect_gemm_ready_copy(r({1, 7}), false, false, "one row");
  expect_gemm_ready_copy(r({7, 1}), false, false, "one column");
  expect_gemm_ready_copy(r({4, 1, 7}).expand({4, 3, 7}), false, false, "rows broadcast inside a matrix");
  // Every other element in both directions: no flag describes it, so it comes back row-major.
  const Tensor sparse = Tensor::alias(r({10, 14}), {5, 7}, {28, 2}, 0);
  expect_gemm_ready_copy(sparse, false, false, "a matrix no transpose flag describes");
  // A batch only partly broadcast is copied whole.
  expect_gemm_ready_copy(r({2, 1, 5, 7}).expand({2, 3, 5, 7}), false, false, "a partly broadcast batch");
  // Empty matrices copy nothing.
  const Tensor empty = copy_as_matrices(r({3, 0, 7}), DType::F64, cpu::copy);
  EXPECT_EQ(empty.shape(), (Shape{3, 0, 7}));
}

}  // namespace
