// Column reductions on CUDA (backends/cuda/reduce.cu's column kernel: bias gradients, sums
// over the batch) against the CPU at the sizes that decide its geometry: row counts around
// its unroll of 8 and its chunking (chunks of at least 64 rows, about 1024 blocks), column
// counts around a warp and a block, the models' widths, rows with a stride wider than the
// row, and reduced dims that do not merge into one stride. The parity harness's op cases are
// too small to reach this kernel (it needs 32 or more outputs). Without a GPU each test skips
// and says why.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

namespace {

#ifndef MMGRAD_HAVE_CUDA
MMGRAD_TEST_NEEDS_CUDA_BUILD(ReduceOnCuda)
#else

const Device kGpu = Device::cuda(0);

// The same reduction of the same values on the GPU and the CPU. Sums accumulate in f64 on
// both, so they agree to f32 rounding of the result; max and min are exact.
void expect_same(const Tensor& x_gpu, const std::vector<int64_t>& dims, const std::string& what) {
  const Tensor x_cpu = x_gpu.to(Device::cpu());
  struct Reduction {
    const char* name;
    Tensor (*fn)(const Tensor&, const std::vector<int64_t>&, bool);
    double rtol;
  };
  for (const Reduction& r : {Reduction{"sum", sum, 1e-6}, Reduction{"amax", amax, 0}, Reduction{"amin", amin, 0}}) {
    const std::vector<float> got = to_vector<float>(r.fn(x_gpu, dims, false).to(Device::cpu()));
    const std::vector<float> want = to_vector<float>(r.fn(x_cpu, dims, false));
    ASSERT_EQ(got.size(), want.size()) << what;
    for (size_t i = 0; i < want.size(); ++i)
      ASSERT_NEAR(got[i], want[i], r.rtol * std::max(1.0f, std::fabs(want[i]))) << r.name << " of " << what << " [" << i << "]";
  }
}

TEST(ReduceOnCuda, ColumnReductionsMatchTheCpu) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  Generator gen(21);
  for (const int64_t rows : {1, 7, 8, 9, 63, 64, 65, 1000, 4099, 12803}) {
    for (const int64_t cols : {32, 33, 255, 257, 768}) {
      const Tensor x = randn({rows, cols}, DType::F32, kGpu, &gen);
      expect_same(x, {0}, fmt::format("[{}, {}] over rows", rows, cols));
    }
  }
  // The models' bias gradients: [B, T, N] summed over B and T.
  expect_same(randn({256, 50, 3072}, DType::F32, kGpu, &gen), {0, 1}, "clip-b32's image MLP activations");
  expect_same(randn({64, 77, 512}, DType::F32, kGpu, &gen), {0, 1}, "a text tower's activations");
}

TEST(ReduceOnCuda, StridedColumnsMatchTheCpu) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  Generator gen(22);
  // Rows of a wider matrix (row stride 700, 600 columns kept).
  const Tensor wide = randn({2051, 700}, DType::F32, kGpu, &gen);
  expect_same(narrow(wide, 1, 50, 600), {0}, "600 of 700 columns");
  // Reduced dims that do not merge: [B, T, N] with T narrowed, summed over B and T.
  const Tensor x = randn({33, 20, 96}, DType::F32, kGpu, &gen);
  expect_same(narrow(x, 1, 3, 13), {0, 1}, "a narrowed middle dim");
  // A reduced dim between kept ones: [A, R, C] over R.
  expect_same(randn({5, 301, 64}, DType::F32, kGpu, &gen), {1}, "the middle dim");
  // f64 accumulates in f64, so it agrees with the CPU to its own rounding.
  const Tensor d = randn({1031, 129}, DType::F64, kGpu, &gen);
  const std::vector<double> got = to_vector<double>(sum(d, {0}).to(Device::cpu()));
  const std::vector<double> want = to_vector<double>(sum(d.to(Device::cpu()), {0}));
  for (size_t i = 0; i < want.size(); ++i) ASSERT_NEAR(got[i], want[i], 1e-12 * std::max(1.0, std::fabs(want[i])));
}

#endif

}  // namespace
