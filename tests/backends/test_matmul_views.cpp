// matmul hands transposed and broadcast operands to the GEMM as strides: the only tensor
// memory it allocates is the output. Counted through the caching host allocator.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/host_allocator.h"

using namespace mmgrad;

namespace {
uint64_t allocations_during(const std::function<void()>& fn) {
  uint64_t before = host_memory_stats().allocations;
  fn();
  return host_memory_stats().allocations - before;
}
}  // namespace

TEST(MatmulViews, TransposedOperandsAreNotCopied) {
  NoGradGuard no_grad;
  Tensor a = randn({64, 32}), b = randn({48, 32}), at = randn({32, 64});
  Tensor expected = matmul(a, contiguous(transpose(b, 0, 1)));
  Tensor out;
  EXPECT_EQ(allocations_during([&] { out = matmul(a, transpose(b, 0, 1)); }), 1u);
  EXPECT_TRUE(allclose(out, expected, 1e-5, 1e-5));
  EXPECT_EQ(allocations_during([&] { out = matmul(transpose(at, 0, 1), transpose(b, 0, 1)); }), 1u);
  Tensor ref = matmul(contiguous(transpose(at, 0, 1)), contiguous(transpose(b, 0, 1)));
  EXPECT_TRUE(allclose(out, ref, 1e-5, 1e-5));
}

TEST(MatmulViews, LinearOnABatchIsOneGemmWithoutCopies) {
  NoGradGuard no_grad;
  Tensor x = randn({4, 16, 32}), w = randn({24, 32}), bias = randn({24});
  Tensor y;
  // Only the output: the bias is added as the GEMM stores it (the matmul_bias kernel).
  EXPECT_EQ(allocations_during([&] { y = linear(x, w, bias); }), 1u);
  Tensor ref = add(matmul(contiguous(x), contiguous(transpose(w, 0, 1))), bias);
  EXPECT_TRUE(allclose(y, ref, 1e-5, 1e-5));
}

TEST(MatmulViews, BroadcastBatchDimsAreNotMaterialised) {
  NoGradGuard no_grad;
  Tensor a = randn({3, 1, 5, 7}), b = randn({4, 7, 6});
  Tensor out;
  EXPECT_EQ(allocations_during([&] { out = matmul(a, b); }), 1u);
  EXPECT_EQ(out.shape(), (Shape{3, 4, 5, 6}));
  Tensor ref = matmul(contiguous(expand(a, {3, 4, 5, 7})), contiguous(expand(b, {3, 4, 7, 6})));
  EXPECT_TRUE(allclose(out, ref, 1e-5, 1e-5));
}
