// sum_of_squares: many tensors' sums of squares in one fused pass (clip_grad_norm's norm).
// Each result against a long-double reference; the same bits on 1 and 2 threads; the
// tensors' sizes straddle the chunk boundaries (16384 on the CPU, 4096 on CUDA) and include
// empty tensors; non-contiguous views, mixed dtypes, and the CUDA kernel against the CPU.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/ops.h"
#include "core/parallel.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

using namespace mmgrad;

namespace {

// Sizes around both backends' chunk sizes, an empty tensor among them, and enough tensors
// (100) that CUDA needs two groups of its 96-entry table.
std::vector<Tensor> gradient_like(DType dtype) {
  Generator gen(21);
  const int64_t sizes[] = {1, 3, 4095, 4096, 4097, 0, 16383, 16384, 16385, 70000, 128, 513};
  std::vector<Tensor> out;
  for (int i = 0; i < 100; ++i) out.push_back(randn({sizes[i % 12]}, dtype, Device::cpu(), &gen));
  return out;
}

long double reference(const Tensor& t) {
  const std::vector<double> v = to_vector<double>(t);
  long double s = 0;
  for (double x : v) s += static_cast<long double>(x) * x;
  return s;
}

TEST(SumOfSquares, MatchesALongDoubleReferenceInF32AndF64) {
  for (DType dt : {DType::F32, DType::F64}) {
    const std::vector<Tensor> ts = gradient_like(dt);
    const Tensor out = sum_of_squares(ts);
    ASSERT_EQ(out.shape(), (Shape{100}));
    ASSERT_EQ(out.dtype(), DType::F64);
    const std::vector<double> got = to_vector<double>(out);
    for (size_t i = 0; i < ts.size(); ++i) {
      const long double want = reference(ts[i]);
      EXPECT_NEAR(got[i], static_cast<double>(want), 1e-13 * static_cast<double>(want) + 1e-300)
          << "tensor " << i << " of " << ts[i].numel() << " elements";
    }
    EXPECT_EQ(got[5], 0.0) << "an empty tensor's sum of squares";
  }
}

TEST(SumOfSquares, DoesNotDependOnTheThreadCount) {
  mmtest::ThreadCountGuard threads;
  const std::vector<Tensor> ts = gradient_like(DType::F32);
  set_num_threads(1);
  const std::vector<double> one = to_vector<double>(sum_of_squares(ts));
  set_num_threads(2);
  const std::vector<double> two = to_vector<double>(sum_of_squares(ts));
  EXPECT_EQ(one, two);
}

TEST(SumOfSquares, TakesViewsAndRejectsMixedDtypes) {
  Tensor m = reshape(arange(0, 12, 1, DType::F32), {3, 4});
  const std::vector<double> got = to_vector<double>(sum_of_squares({transpose(m, 0, 1), narrow(m, 1, 1, 2)}));
  double all = 0, middle = 0;
  for (int i = 0; i < 12; ++i) {
    all += i * i;
    if (i % 4 == 1 || i % 4 == 2) middle += i * i;
  }
  EXPECT_EQ(got, (std::vector<double>{all, middle}));
  EXPECT_EQ(sum_of_squares({}).numel(), 0);
  EXPECT_THROW(sum_of_squares({ones({2}, DType::F32), ones({2}, DType::F64)}), Error);
  EXPECT_THROW(sum_of_squares({ones({2}, DType::I64)}), Error);
}

#ifdef MMGRAD_HAVE_CUDA
TEST(SumOfSquares, CudaMatchesTheCpu) {
  MMGRAD_REQUIRE_GPU();
  for (DType dt : {DType::F32, DType::F64}) {
    const std::vector<Tensor> ts = gradient_like(dt);
    std::vector<Tensor> on_gpu;
    for (const Tensor& t : ts) on_gpu.push_back(t.to(Device::cuda(0)));
    const std::vector<double> cpu = to_vector<double>(sum_of_squares(ts));
    const std::vector<double> gpu = to_vector<double>(sum_of_squares(on_gpu).to(Device::cpu()));
    ASSERT_EQ(gpu.size(), cpu.size());
    for (size_t i = 0; i < cpu.size(); ++i) EXPECT_NEAR(gpu[i], cpu[i], 1e-13 * cpu[i]) << "tensor " << i;
  }
}
#else
TEST(SumOfSquares, CudaMatchesTheCpu) { GTEST_SKIP() << "this build has no CUDA backend (meson -Dcuda=enabled)"; }
#endif

}  // namespace
