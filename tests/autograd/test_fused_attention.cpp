// The fused attention kernel against attention composed of matmul and softmax ops (the
// switch set_fused_attention(false)): the same outputs and gradients on the shapes the
// models use (heads as permuted views, causal, cross-attention, boolean and additive masks,
// rows that attend to nothing), outputs in the projections' layout, and only per-row
// statistics kept between forward and backward. Gradcheck of the fused path in f64 runs in
// the op harness (tests/ops, the sdpa_* cases).
#include <gtest/gtest.h>

#include <limits>

#include "autograd/flops.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/host_allocator.h"

#ifdef MMGRAD_HAVE_CUDA
#include "tests/core/gpu_test_util.h"
#endif

using namespace mmgrad;

namespace {

struct Case {
  const char* name;
  int64_t B, H, T, S, D, Dv;
  bool causal;
  enum class Mask { None, Bool, Additive } mask;
};

struct Result {
  std::vector<double> out, dx, dkv;
};

// x [B, T, H*D] and kv [B, S, H*(D+Dv)] projections split into heads as the models do; the
// values are drawn on the CPU, so every device sees the same ones.
Result run(const Case& c, bool fused, DType dtype, Device device = Device::cpu()) {
  FusedAttentionGuard setting(fused);
  Generator gen(11);
  Tensor x = randn({c.B, c.T, c.H * c.D}, dtype, Device::cpu(), &gen).to(device).set_requires_grad();
  Tensor kv = randn({c.B, c.S, c.H * (c.D + c.Dv)}, dtype, Device::cpu(), &gen).to(device).set_requires_grad();
  Tensor w = randn({c.B, c.H, c.T, c.Dv}, dtype, Device::cpu(), &gen).to(device);
  Tensor q = permute(reshape(x, {c.B, c.T, c.H, c.D}), {0, 2, 1, 3});
  Tensor k = permute(reshape(narrow(kv, 2, 0, c.H * c.D), {c.B, c.S, c.H, c.D}), {0, 2, 1, 3});
  Tensor v = permute(reshape(narrow(kv, 2, c.H * c.D, c.H * c.Dv), {c.B, c.S, c.H, c.Dv}), {0, 2, 1, 3});
  Tensor mask;
  if (c.mask == Case::Mask::Bool) {
    // Per batch element, keys beyond a length are hidden; batch 0 hides every key from query
    // row 1 (a row that attends to nothing).
    std::vector<int32_t> m(static_cast<size_t>(c.B * c.T * c.S));
    for (int64_t b = 0; b < c.B; ++b)
      for (int64_t i = 0; i < c.T; ++i)
        for (int64_t j = 0; j < c.S; ++j)
          m[static_cast<size_t>((b * c.T + i) * c.S + j)] = !(b == 0 && i == 1) && j < c.S - b;
    mask = unsqueeze(from_data(m, {c.B, c.T, c.S}).to(DType::Bool), 1).to(device);  // [B, 1, T, S]
  } else if (c.mask == Case::Mask::Additive) {
    mask = randn({1, c.S}, dtype, Device::cpu(), &gen).to(device);  // broadcast over batch, heads and rows
  }
  Tensor out = scaled_dot_product_attention(q, k, v, c.causal, mask);
  sum(mul(out, w)).backward();
  const Device cpu = Device::cpu();
  return {to_vector<double>(contiguous(out).to(cpu)), to_vector<double>(x.grad().to(cpu)),
          to_vector<double>(kv.grad().to(cpu))};
}

void expect_close(const std::vector<double>& got, const std::vector<double>& want, double tol, const char* what,
                  const char* name) {
  ASSERT_EQ(got.size(), want.size()) << what << " of " << name;
  double worst = 0;
  for (size_t i = 0; i < got.size(); ++i) {
    ASSERT_TRUE(std::isfinite(got[i])) << what << " of " << name << " element " << i;
    worst = std::max(worst, std::abs(got[i] - want[i]) / (1 + std::abs(want[i])));
  }
  EXPECT_LE(worst, tol) << what << " of " << name;
}

const Case kCases[] = {
    {"vision self-attention", 3, 4, 17, 17, 8, 8, false, Case::Mask::None},
    {"causal text", 2, 3, 12, 12, 8, 8, true, Case::Mask::None},
    {"cross-attention onto image tokens", 2, 2, 9, 17, 6, 6, false, Case::Mask::None},
    {"value width differs", 2, 2, 5, 7, 4, 3, false, Case::Mask::None},
    {"padding mask with an empty row", 3, 2, 6, 6, 4, 4, false, Case::Mask::Bool},
    {"causal with padding mask", 3, 2, 6, 6, 4, 4, true, Case::Mask::Bool},
    {"additive broadcast mask", 2, 3, 5, 8, 4, 4, false, Case::Mask::Additive},
    {"one key", 2, 2, 4, 1, 4, 4, false, Case::Mask::None},
    // The CPU kernel pads score rows to whole 16-float vectors: rows that need no padding,
    // rows one key past a whole number of vectors (the shapes-small vision tower: 65), and
    // padding after a causal or boolean mask.
    {"keys fill whole vectors", 2, 2, 16, 32, 8, 8, false, Case::Mask::None},
    {"65 image tokens, head width 24", 1, 2, 65, 65, 24, 24, false, Case::Mask::None},
    {"causal over 17 tokens", 2, 2, 17, 17, 8, 8, true, Case::Mask::None},
    {"padding mask over 33 keys", 2, 2, 33, 33, 8, 8, false, Case::Mask::Bool},
};

TEST(FusedAttention, MatchesComposedOpsInF32AndF64) {
  for (const Case& c : kCases) {
    for (DType dt : {DType::F32, DType::F64}) {
      const Result fused = run(c, true, dt), composed = run(c, false, dt);
      const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
      expect_close(fused.out, composed.out, tol, "output", c.name);
      expect_close(fused.dx, composed.dx, tol, "gradient of q's projection", c.name);
      expect_close(fused.dkv, composed.dkv, tol, "gradient of k and v's projection", c.name);
    }
  }
}

#ifdef MMGRAD_HAVE_CUDA
// The CUDA kernels against the CPU's fused kernel, on the cases above and on the models' own
// sizes, where the key loop runs over several 32-key chunks (S = 50, 77) and each lane owns
// several output columns (D = 64, 80): the op harness's small cases cover neither.
TEST(FusedAttention, CudaMatchesTheCpu) {
  MMGRAD_REQUIRE_GPU();
  // The fused kernels run with f32 matmuls (ops_nn.cpp's fused_attention_pays).
  const cuda::MatmulPrecision precision = cuda::matmul_precision();
  cuda::set_matmul_precision(cuda::MatmulPrecision::F32);
  std::vector<Case> cases(std::begin(kCases), std::end(kCases));
  cases.push_back({"ViT-B/32 self-attention", 2, 3, 50, 50, 64, 64, false, Case::Mask::None});
  cases.push_back({"causal text of 77 tokens", 2, 2, 77, 77, 64, 64, true, Case::Mask::None});
  cases.push_back({"padded text of 70 tokens", 3, 2, 70, 70, 80, 80, false, Case::Mask::Bool});
  cases.push_back({"captions onto 50 image tokens", 2, 2, 33, 50, 48, 40, false, Case::Mask::Additive});
  for (const Case& c : cases) {
    for (DType dt : {DType::F32, DType::F64}) {
      const Result gpu = run(c, true, dt, Device::cuda(0)), cpu = run(c, true, dt);
      const double tol = dt == DType::F32 ? 2e-5 : 1e-12;
      expect_close(gpu.out, cpu.out, tol, "output", c.name);
      expect_close(gpu.dx, cpu.dx, tol, "gradient of q's projection", c.name);
      expect_close(gpu.dkv, cpu.dkv, tol, "gradient of k and v's projection", c.name);
    }
  }
  cuda::set_matmul_precision(precision);
}
#else
TEST(FusedAttention, CudaMatchesTheCpu) { GTEST_SKIP() << "this build has no CUDA backend (meson -Dcuda=enabled)"; }
#endif

TEST(FusedAttention, RowsThatAttendToNothingGiveZeros) {
  Tensor q = ones({1, 2, 3}, DType::F64).set_requires_grad();
  Tensor k = ones({1, 2, 3}, DType::F64).set_requires_grad();
  Tensor v = full({1, 2, 3}, 2.0, DType::F64).set_requires_grad();
  Tensor mask = from_data(std::vector<int32_t>{1, 1, 0, 0}, {2, 2}).to(DType::Bool);  // row 1: nothing
  Tensor out = scaled_dot_product_attention(q, k, v, false, mask);
  EXPECT_EQ(to_vector<double>(out), (std::vector<double>{2, 2, 2, 0, 0, 0}));
  sum(out).backward();
  // Row 0 attends evenly to two equal keys: its query gradient vanishes up to rounding; row
  // 1 attends to nothing, so nothing flows back through it at all.
  const auto dq = to_vector<double>(q.grad()), dv = to_vector<double>(v.grad());
  for (size_t i = 0; i < 3; ++i) EXPECT_NEAR(dq[i], 0.0, 1e-14);
  for (size_t i = 3; i < 6; ++i) EXPECT_EQ(dq[i], 0.0);
  for (double g : dv) EXPECT_NEAR(g, 0.5, 1e-14);
}

TEST(FusedAttention, OutputAndGradientsKeepTheProjectionLayout) {
  // Heads are views of [B, T, H, D]: the output comes back in that layout, so merging the
  // heads (permute + reshape) is a view, not a copy.
  Generator gen(5);
  Tensor x = randn({2, 5, 3 * 4}, DType::F32, Device::cpu(), &gen).set_requires_grad();
  Tensor q = permute(reshape(x, {2, 5, 3, 4}), {0, 2, 1, 3});
  Tensor out = scaled_dot_product_attention(q, q, q, true);
  Tensor merged = permute(out, {0, 2, 1, 3});
  EXPECT_TRUE(merged.is_contiguous()) << "the output is not in [B, T, H, D] layout";
  Tensor y = reshape(merged, {2, 5, 12});
  EXPECT_TRUE(y.shares_storage(out)) << "merging the heads copied the output";
}

// Bytes held between forward and backward by one attention over [16, 4, 48, 48] scores.
size_t held_after_forward(bool fused) {
  FusedAttentionGuard setting(fused);
  RecomputeGuard keep_probs(false);
  Generator gen(4);
  Tensor x = randn({16, 48, 4 * 16}, DType::F32, Device::cpu(), &gen).set_requires_grad();
  const size_t before = host_memory_stats().in_use;
  Tensor q = permute(reshape(mul(x, 1.0), {16, 48, 4, 16}), {0, 2, 1, 3});
  Tensor out = scaled_dot_product_attention(q, q, q, false);
  const size_t held = host_memory_stats().in_use - before;
  sum(out).backward();
  return held;
}

TEST(FusedAttention, KeepsRowStatisticsNotProbabilities) {
  // Composed with recomputation off, the probabilities [16, 4, 48, 48] stay until backward;
  // fused, only the output, the input and one log-sum-exp per row do.
  const size_t composed = held_after_forward(false), fused = held_after_forward(true);
  const size_t probs = 16 * 4 * 48 * 48 * sizeof(float), rows = 16 * 4 * 48 * sizeof(float);
  EXPECT_GE(composed, fused + probs * 95 / 100) << "composed " << composed << " bytes, fused " << fused;
  // Forward's product x*1, the output, and the row statistics (allocator rounding aside).
  EXPECT_LE(fused, 2 * (16 * 48 * 64 * sizeof(float)) * 2 + rows * 2) << fused;
}

uint64_t flops_of_forward_and_backward(bool fused) {
  FusedAttentionGuard setting(fused);
  RecomputeGuard recompute(true);
  Generator gen(6);
  Tensor q = randn({2, 3, 7, 4}, DType::F32, Device::cpu(), &gen).set_requires_grad();
  Tensor k = randn({2, 3, 5, 4}, DType::F32, Device::cpu(), &gen).set_requires_grad();
  Tensor v = randn({2, 3, 5, 6}, DType::F32, Device::cpu(), &gen).set_requires_grad();
  const uint64_t before = matmul_flops();
  sum(scaled_dot_product_attention(q, k, v, false)).backward();
  return matmul_flops() - before;
}

TEST(FusedAttention, CountsTheFlopsOfTheProductsItReplaces) {
  // The step log's GFLOP/s and MFU come from this counter: the fused kernel counts what the
  // composed matmuls would (forward Q K^T and P V; backward recomputed Q K^T, dP, dQ, dK, dV).
  const uint64_t fused = flops_of_forward_and_backward(true);
  EXPECT_EQ(fused, flops_of_forward_and_backward(false));
  EXPECT_EQ(fused, 2ull * 6 * 7 * 5 * ((4 + 6) + (3 * 4 + 2 * 6)));
}

}  // namespace
