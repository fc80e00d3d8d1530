// linear() on CUDA (the matmul_bias slot: cuBLASLt's bias epilogue for f32, the exact
// bias-then-accumulate composition for f64 and for layouts cuBLASLt is not given) against
// the CPU, forward and gradients. The shapes cover one row, an empty K, odd sizes, the
// models' widths, and operands whose pointers are not 16-byte aligned (narrowed views):
// cuBLASLt plans are keyed by alignment, and a kernel that assumed more would read wrongly.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/ops.h"
#include "backends/cuda/cuda.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

namespace {

#ifdef MMGRAD_HAVE_CUDA
struct LinearCase {
  int64_t rows, in, out;
  bool offset;  // operands as narrowed views one element in: 4-byte (f32) aligned pointers
};

struct LinearResult {
  std::vector<double> y, dx, dw, db;
};

LinearResult run_linear(const LinearCase& c, DType dt, Device device) {
  Generator g(static_cast<uint64_t>(c.rows * 1000003 + c.in * 1009 + c.out));
  const int64_t extra = c.offset ? 1 : 0;
  Tensor x_base = randn({c.rows * (c.in + extra) + extra}, dt, Device::cpu(), &g);
  Tensor w_base = randn({c.out * c.in + extra}, dt, Device::cpu(), &g);
  Tensor b_base = randn({c.out + extra}, dt, Device::cpu(), &g);
  Tensor up = randn({c.rows, c.out}, dt, Device::cpu(), &g);
  x_base = x_base.to(device), w_base = w_base.to(device), b_base = b_base.to(device), up = up.to(device);
  // x as rows of a wider matrix when offset (row stride in + 1), w and b one element in.
  Tensor x = c.offset ? narrow(reshape(narrow(x_base, 0, 1, c.rows * (c.in + 1)), {c.rows, c.in + 1}), 1, 0, c.in)
                      : reshape(x_base, {c.rows, c.in});
  Tensor w = reshape(narrow(w_base, 0, extra, c.out * c.in), {c.out, c.in});
  Tensor b = narrow(b_base, 0, extra, c.out);
  x = x.detach().set_requires_grad(), w = w.detach().set_requires_grad(), b = b.detach().set_requires_grad();
  Tensor y = linear(x, w, b);
  sum(mul(y, up)).backward();
  auto host = [](const Tensor& t) { return to_vector<double>(t.to(Device::cpu()).to(DType::F64)); };
  return {host(y), host(x.grad()), host(w.grad()), host(b.grad())};
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what,
                  const LinearCase& c) {
  ASSERT_EQ(got.size(), want.size()) << what;
  double scale = 1;
  for (double v : want) scale = std::max(scale, std::fabs(v));
  for (size_t i = 0; i < want.size(); ++i)
    ASSERT_NEAR(got[i], want[i], tol * scale) << what << " [" << i << "] of rows " << c.rows << ", in " << c.in
                                              << ", out " << c.out << (c.offset ? ", offset views" : "");
}

const LinearCase kCases[] = {
    {1, 1, 1, false},     {4, 0, 3, false},     {7, 5, 3, false},     {13, 17, 9, true},   {64, 40, 33, true},
    {200, 96, 128, false}, {4160, 96, 384, false}, {1024, 384, 96, true}, {257, 768, 3072, false},
};

TEST(LinearOnCuda, MatchesTheCpuInEveryPrecision) {
  MMGRAD_REQUIRE_GPU();
  const cuda::MatmulPrecision previous = cuda::matmul_precision();
  // Tolerances relative to the largest value: f32 sums of up to 768 products; TF32 and bf16
  // round the inputs to 10 and 7 mantissa bits (the bias is added in f32 either way).
  const std::pair<cuda::MatmulPrecision, double> precisions[] = {
      {cuda::MatmulPrecision::F32, 2e-5}, {cuda::MatmulPrecision::TF32, 4e-3}, {cuda::MatmulPrecision::BF16, 3e-2}};
  for (const auto& [precision, tol] : precisions) {
    cuda::set_matmul_precision(precision);
    for (const LinearCase& c : kCases) {
      const LinearResult gpu = run_linear(c, DType::F32, Device::cuda(0)), cpu = run_linear(c, DType::F32, Device::cpu());
      expect_close(gpu.y, cpu.y, tol, "output", c);
      expect_close(gpu.dx, cpu.dx, tol, "gradient of x", c);
      expect_close(gpu.dw, cpu.dw, tol, "gradient of the weight", c);
      expect_close(gpu.db, cpu.db, tol, "gradient of the bias", c);
    }
  }
  cuda::set_matmul_precision(cuda::MatmulPrecision::F32);
  for (const LinearCase& c : kCases) {  // f64: the composed path, exact up to summation order
    const LinearResult gpu = run_linear(c, DType::F64, Device::cuda(0)), cpu = run_linear(c, DType::F64, Device::cpu());
    expect_close(gpu.y, cpu.y, 1e-12, "f64 output", c);
    expect_close(gpu.dw, cpu.dw, 1e-12, "f64 gradient of the weight", c);
  }
  cuda::set_matmul_precision(previous);
}
#else
TEST(LinearOnCuda, MatchesTheCpuInEveryPrecision) {
  GTEST_SKIP() << "this build has no CUDA backend (meson -Dcuda=enabled)";
}
#endif

}  // namespace
