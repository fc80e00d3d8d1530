// Mixed precision's GEMMs on CUDA (backends/cuda/bf16_operand.h): with the matmul precision
// at bf16, every f32 operand is rounded to bf16 once (to nearest even) and the product is
// accumulated in f32. So the result must equal, within f32 summation error, the f64 product
// of the bf16-rounded operands, for every layout cuBLAS is handed: transposed views, batches,
// a weight broadcast over a batch, attention's head views, an accumulated or strided output,
// and the linear layer's bias epilogue. The tolerance (1e-5 of the sum of |a||b|) is about
// a hundred times tighter than the gap unrounded or truncated operands would leave, so a
// path that skipped the rounding, or rounded differently, fails. Without a GPU each test
// skips and says why.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/bf16_operand.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#endif

using namespace mmgrad;

namespace {

#ifndef MMGRAD_HAVE_CUDA
MMGRAD_TEST_NEEDS_CUDA_BUILD(Bf16GemmCuda)
#else

const Device kGpu = Device::cuda(0);

// Runs the body at bf16 matmul precision and puts the previous precision back.
class Bf16GemmCuda : public ::testing::Test {
 protected:
  void SetUp() override {
    MMGRAD_REQUIRE_GPU();
    if (!cuda::bf16_gemm_operands())
      GTEST_SKIP() << "MMGRAD_CUDA_BF16_OPERANDS=0: cuBLAS rounds inside the GEMM (LinearOnCuda covers that path)";
    previous_ = cuda::matmul_precision();
    cuda::set_matmul_precision(cuda::MatmulPrecision::BF16);
  }
  void TearDown() override {
    if (cuda::available()) cuda::set_matmul_precision(previous_);
  }

 private:
  cuda::MatmulPrecision previous_ = cuda::MatmulPrecision::F32;
};

// On the CPU in f64, each value rounded to bf16 first.
Tensor rounded(const Tensor& t) { return t.to(Device::cpu()).to(DType::BF16).to(DType::F64); }

// got (any device, f32) against the f64 product of the rounded operands, elementwise within
// 1e-5 of the matching entry of |a| |b|.
void expect_rounded_product(const Tensor& got, const Tensor& want, const Tensor& abs_product, const std::string& what) {
  const std::vector<double> g = to_vector<double>(got.to(Device::cpu()).to(DType::F64));
  const std::vector<double> w = to_vector<double>(want), scale = to_vector<double>(abs_product);
  ASSERT_EQ(g.size(), w.size()) << what;
  for (size_t i = 0; i < w.size(); ++i)
    ASSERT_NEAR(g[i], w[i], 1e-5 * scale[i] + 1e-30) << what << " [" << i << "]";
}

void expect_matmul(const Tensor& a, const Tensor& b, const std::string& what) {
  const Tensor ra = rounded(a), rb = rounded(b);
  expect_rounded_product(matmul(a, b), matmul(ra, rb), matmul(abs(ra), abs(rb)), what);
}

TEST_F(Bf16GemmCuda, MatmulRoundsEveryLayoutOnceAndAccumulatesInF32) {
  NoGradGuard no_grad;
  Generator gen(11);
  auto r = [&](const Shape& s) { return randn(s, DType::F32, kGpu, &gen); };
  expect_matmul(r({37, 50}), r({50, 29}), "row-major operands");
  expect_matmul(r({50, 37}).transpose(0, 1), r({50, 29}), "a transposed view");
  expect_matmul(r({37, 50}), r({29, 50}).transpose(0, 1), "b transposed (a linear layer's weight)");
  expect_matmul(r({50, 37}).transpose(0, 1), r({29, 50}).transpose(0, 1), "both transposed");
  expect_matmul(r({3, 37, 50}), r({3, 50, 29}), "a batch");
  expect_matmul(r({3, 37, 50}), r({50, 29}), "a weight broadcast over the batch");
  expect_matmul(r({3, 37, 50}), r({29, 50}).transpose(0, 1), "a transposed weight broadcast over the batch");
  expect_matmul(r({1, 37, 50}), r({4, 50, 29}), "the first operand broadcast over the batch");
  // Attention's products on head views of [B, T, H, D] projections: several batch strides.
  const Tensor q = r({2, 9, 4, 16}).permute({0, 2, 1, 3}), k = r({2, 9, 4, 16}).permute({0, 2, 1, 3});
  const Tensor v = r({2, 9, 4, 16}).permute({0, 2, 1, 3});
  expect_matmul(q, k.transpose(2, 3), "Q K^T on head views");
  expect_matmul(r({2, 4, 9, 9}), v, "P V on head views");
  expect_matmul(r({257, 768}), r({3072, 768}).transpose(0, 1), "clip-b32's MLP width");
  expect_matmul(r({1, 768}), r({768, 1}), "a dot product");
}

TEST_F(Bf16GemmCuda, AccumulatedAndStridedOutputsKeepTheirValues) {
  NoGradGuard no_grad;
  Generator gen(12);
  const Tensor a = randn({33, 40}, DType::F32, kGpu, &gen), b = randn({40, 21}, DType::F32, kGpu, &gen);
  const Tensor ra = rounded(a), rb = rounded(b), scale = matmul(abs(ra), abs(rb));
  // out += a b onto values that are not rounded: only the operands are.
  const Tensor start = randn({33, 21}, DType::F32, kGpu, &gen);
  const Tensor out = start.clone();
  cuda::matmul(out, a, b, /*accumulate=*/true);
  const Tensor start64 = start.to(Device::cpu()).to(DType::F64);
  expect_rounded_product(out, add(start64, matmul(ra, rb)), add(abs(start64), scale), "accumulated output");
  // An output that is a transposed view (cuBLAS writes through a dense temporary).
  const Tensor storage = full({21, 33}, 7.0, DType::F32, kGpu);
  cuda::matmul(storage.transpose(0, 1), a, b, /*accumulate=*/false);
  expect_rounded_product(storage.transpose(0, 1), matmul(ra, rb), scale, "transposed output view");
}

TEST_F(Bf16GemmCuda, TakesBf16OperandsDirectlyAndRefusesOtherMixes) {
  NoGradGuard no_grad;
  Generator gen(13);
  const Tensor a = randn({2, 24, 40}, DType::F32, kGpu, &gen), b = randn({40, 16}, DType::F32, kGpu, &gen);
  const Tensor out = Tensor::empty({2, 24, 16}, DType::F32, kGpu);
  cuda::matmul(out, a.to(DType::BF16), b.to(DType::BF16).expand({2, 40, 16}), false);
  const Tensor ra = rounded(a), rb = rounded(b);
  expect_rounded_product(out, matmul(ra, rb), matmul(abs(ra), abs(rb)), "bf16 operands, f32 product");
  mmtest::expect_error([&] { cuda::matmul(out, a.to(DType::BF16), b.expand({2, 40, 16}), false); }, "matmul",
                       {"bf16 x f32 -> f32 is not supported"});
  const Tensor out16 = Tensor::empty({2, 24, 16}, DType::BF16, kGpu);
  mmtest::expect_error(
      [&] { cuda::matmul(out16, a.to(DType::BF16), b.to(DType::BF16).expand({2, 40, 16}), false); }, "matmul",
      {"bf16 x bf16 -> bf16 is not supported"});
}

// The linear layer's forward (cuBLASLt's bias epilogue on rounded operands; the bias is added
// in f32) and its gradients (GEMMs on rounded operands; the bias gradient is an f32 sum).
TEST_F(Bf16GemmCuda, LinearLayerAndItsGradients) {
  struct Case {
    int64_t rows, in, out;
  };
  for (const Case c : {Case{7, 5, 3}, Case{64, 40, 33}, Case{200, 96, 128}, Case{257, 768, 3072}}) {
    Generator gen(static_cast<uint64_t>(c.rows * 31 + c.in));
    const std::string what = fmt::format("linear {}x{} -> {}", c.rows, c.in, c.out);
    Tensor x = randn({c.rows, c.in}, DType::F32, kGpu, &gen).set_requires_grad();
    Tensor w = randn({c.out, c.in}, DType::F32, kGpu, &gen).set_requires_grad();
    Tensor bias = randn({c.out}, DType::F32, kGpu, &gen).set_requires_grad();
    const Tensor up = randn({c.rows, c.out}, DType::F32, kGpu, &gen);
    const Tensor y = linear(x, w, bias);
    sum(mul(y, up)).backward();
    const Tensor rx = rounded(x.detach()), rw = rounded(w.detach()), rup = rounded(up);
    const Tensor b64 = bias.detach().to(Device::cpu()).to(DType::F64);
    expect_rounded_product(y, add(matmul(rx, rw.transpose(0, 1)), b64),
                           add(matmul(abs(rx), abs(rw).transpose(0, 1)), abs(b64)), what + ": output");
    expect_rounded_product(x.grad(), matmul(rup, rw), matmul(abs(rup), abs(rw)), what + ": gradient of x");
    expect_rounded_product(w.grad(), matmul(rup.transpose(0, 1), rx), matmul(abs(rup).transpose(0, 1), abs(rx)),
                           what + ": gradient of the weight");
    const Tensor up64 = up.to(Device::cpu()).to(DType::F64);
    expect_rounded_product(bias.grad(), sum(up64, {0}), sum(abs(up64), {0}), what + ": gradient of the bias");
  }
}

#endif

}  // namespace
