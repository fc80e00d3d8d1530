// Autocast (autograd/autocast.h): under an AutocastBf16 guard, matmul, linear and the fused
// MLP block round their GEMM operands to bf16 once, accumulate in f32, keep the rounded
// operands for backward, and round the incoming gradient once there. So the forward result
// and every gradient must equal, within f32 summation error (1e-5 of the matching |a| |b|
// product), the f64 products of the rounded values; a path that skipped a rounding is off by
// about 1e-3 of it. Each test runs on the CPU (bf16 operands widened exactly: the reference)
// and, where there is one, on the GPU (bf16 tensor-core GEMMs), against the same f64 values.
#include <gtest/gtest.h>

#include <cmath>
#include <string>
#include <thread>
#include <vector>

#include "autograd/autocast.h"
#include "autograd/grad_mode.h"
#include "autograd/op_helpers.h"
#include "backends/cpu/kernels.h"
#include "autograd/ops.h"
#include "core/host_allocator.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "tests/models/tiny_clip.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

using namespace mmgrad;

namespace {

std::vector<Device> devices() {
  std::vector<Device> d{Device::cpu()};
#ifdef MMGRAD_HAVE_CUDA
  if (cuda::available()) d.push_back(Device::cuda(0));
#endif
  return d;
}

// On the CPU in f64, each value rounded to bf16 first.
Tensor rounded(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::BF16).to(DType::F64); }
Tensor f64(const Tensor& t) { return t.detach().to(Device::cpu()).to(DType::F64); }

// got against want elementwise, within 1e-5 of the matching entry of `scale` (the product of
// the absolute values).
void expect_rounded(const Tensor& got, const Tensor& want, const Tensor& scale, const std::string& what) {
  ASSERT_TRUE(got.defined()) << what;
  ASSERT_EQ(got.shape(), want.shape()) << what;
  const std::vector<double> g = to_vector<double>(f64(got)), w = to_vector<double>(want), s = to_vector<double>(scale);
  for (size_t i = 0; i < w.size(); ++i) ASSERT_NEAR(g[i], w[i], 1e-5 * s[i] + 1e-30) << what << " [" << i << "]";
}

// y = a @ b and the gradients of sum(y * up), under autocast on a's device, against the f64
// products of the rounded a, b and up.
void expect_autocast_matmul(const Tensor& a_in, const Tensor& b_in, const std::string& what) {
  const Tensor a = a_in.detach().set_requires_grad(), b = b_in.detach().set_requires_grad();
  Tensor y, up;
  {
    AutocastBf16 autocast(a.device().type);
    y = matmul(a, b);
    Generator gen(5);
    up = randn(y.shape(), DType::F32, y.device(), &gen);
    sum(mul(y, up)).backward();
  }
  ASSERT_EQ(y.dtype(), DType::F32) << what;
  const Tensor ra = rounded(a), rb = rounded(b), ru = rounded(up);
  const std::string where = what + " on " + a.device().str();
  expect_rounded(y, matmul(ra, rb), matmul(abs(ra), abs(rb)), where + ": product");
  expect_rounded(a.grad(), sum_to(matmul(ru, transpose(rb, -1, -2)), a.shape()),
                 sum_to(matmul(abs(ru), transpose(abs(rb), -1, -2)), a.shape()), where + ": gradient of a");
  expect_rounded(b.grad(), sum_to(matmul(transpose(ra, -1, -2), ru), b.shape()),
                 sum_to(matmul(transpose(abs(ra), -1, -2), abs(ru)), b.shape()), where + ": gradient of b");
}

TEST(Autocast, MatmulRoundsItsOperandsAndGradientOnce) {
  for (const Device d : devices()) {
    Generator gen(11);
    auto r = [&](const Shape& s) { return randn(s, DType::F32, d, &gen); };
    expect_autocast_matmul(r({37, 50}), r({50, 29}), "row-major operands");
    expect_autocast_matmul(r({50, 37}).transpose(0, 1), r({29, 50}).transpose(0, 1), "transposed views");
    expect_autocast_matmul(r({3, 37, 50}), r({3, 50, 29}), "a batch");
    expect_autocast_matmul(r({3, 37, 50}), r({50, 29}), "a batch times one matrix (one folded GEMM)");
    expect_autocast_matmul(r({1, 37, 50}), r({4, 50, 29}), "the first operand broadcast over the batch");
    const Tensor q = r({2, 9, 4, 16}).permute({0, 2, 1, 3}), k = r({2, 9, 4, 16}).permute({0, 2, 1, 3});
    expect_autocast_matmul(q, k.transpose(2, 3), "Q K^T on head views");
    expect_autocast_matmul(r({200, 384}), r({1536, 384}).transpose(0, 1), "an MLP's width");
  }
}

TEST(Autocast, LinearRoundsItsOperandsAndKeepsTheBiasInF32) {
  struct Case {
    int64_t rows, in, out;
  };
  for (const Device d : devices()) {
    for (const Case c : {Case{7, 5, 3}, Case{64, 40, 33}, Case{200, 96, 128}}) {
      Generator gen(static_cast<uint64_t>(c.rows * 31 + c.in));
      const std::string what = "linear " + std::to_string(c.rows) + "x" + std::to_string(c.in) + " -> " +
                               std::to_string(c.out) + " on " + d.str();
      // x with a leading batch dim, as the models call it.
      Tensor x = randn({1, c.rows, c.in}, DType::F32, d, &gen).set_requires_grad();
      Tensor w = randn({c.out, c.in}, DType::F32, d, &gen).set_requires_grad();
      Tensor bias = randn({c.out}, DType::F32, d, &gen).set_requires_grad();
      const Tensor up = randn({1, c.rows, c.out}, DType::F32, d, &gen);
      Tensor y;
      {
        AutocastBf16 autocast(d.type);
        y = linear(x, w, bias);
        sum(mul(y, up)).backward();
      }
      const Tensor rx = reshape(rounded(x), {c.rows, c.in}), rw = rounded(w), ru = reshape(rounded(up), {c.rows, c.out});
      const Tensor b64 = f64(bias), u64 = reshape(f64(up), {c.rows, c.out});
      expect_rounded(reshape(y, {c.rows, c.out}), add(matmul(rx, transpose(rw, 0, 1)), b64),
                     add(matmul(abs(rx), transpose(abs(rw), 0, 1)), abs(b64)), what + ": output");
      expect_rounded(reshape(x.grad(), {c.rows, c.in}), matmul(ru, rw), matmul(abs(ru), abs(rw)),
                     what + ": gradient of x");
      expect_rounded(w.grad(), matmul(transpose(ru, 0, 1), rx), matmul(transpose(abs(ru), 0, 1), abs(rx)),
                     what + ": gradient of the weight");
      // The bias gradient is an f32 sum of the unrounded gradient.
      expect_rounded(bias.grad(), sum(u64, {0}), sum(abs(u64), {0}), what + ": gradient of the bias");
    }
  }
}

// The fused LayerNorm + MLP block (recomputing in backward) against the same block composed of
// layer_norm, linear and quick_gelu, both under autocast: the same roundings at the same
// points, so they agree to f32 rounding; and both differ from the f32 block by far more, so
// the roundings happened.
TEST(Autocast, FusedMlpBlockRoundsWhereTheComposedBlockDoes) {
  const int64_t N = 48, W = 64, H = 256;
  for (const Device d : devices()) {
    Generator gen(3);
    auto param = [&](const Shape& s, double scale) { return mul(randn(s, DType::F32, d, &gen), scale).detach(); };
    const Tensor x0 = param({2, N / 2, W}, 1.0), lw = add(param({W}, 0.1), 1.0).detach(), lb = param({W}, 0.1);
    const Tensor w1 = param({H, W}, 0.1), b1 = param({H}, 0.1), w2 = param({W, H}, 0.05), b2 = param({W}, 0.1);
    const Tensor up = param({2, N / 2, W}, 1.0);
    struct Result {
      Tensor y;
      std::vector<Tensor> grads;
    };
    auto run = [&](bool fused, bool autocast_on) {
      std::vector<Tensor> p;
      for (const Tensor& t : {x0, lw, lb, w1, b1, w2, b2}) p.push_back(t.detach().clone().set_requires_grad());
      Result r;
      {
        AutocastBf16 autocast(d.type, autocast_on);
        RecomputeGuard recompute(true);
        r.y = fused ? layer_norm_mlp(p[0], p[1], p[2], 1e-5, p[3], p[4], p[5], p[6], /*quick_gelu_act=*/true)
                    : linear(quick_gelu(linear(layer_norm(p[0], p[1], p[2], 1e-5), p[3], p[4])), p[5], p[6]);
        sum(mul(r.y, up)).backward();
      }
      for (const Tensor& t : p) r.grads.push_back(t.grad());
      return r;
    };
    const Result fused = run(true, true), composed = run(false, true), exact = run(false, false);
    const char* names[] = {"x", "ln weight", "ln bias", "w1", "b1", "w2", "b2"};
    auto max_abs_diff = [](const Tensor& a, const Tensor& b) {
      const std::vector<double> va = to_vector<double>(f64(a)), vb = to_vector<double>(f64(b));
      double m = 0, scale = 0;
      for (size_t i = 0; i < va.size(); ++i) {
        m = std::max(m, std::fabs(va[i] - vb[i]));
        scale = std::max(scale, std::fabs(vb[i]));
      }
      return m / std::max(scale, 1e-30);
    };
    EXPECT_LT(max_abs_diff(fused.y, composed.y), 2e-5) << "output on " << d.str();
    EXPECT_GT(max_abs_diff(composed.y, exact.y), 1e-4) << "autocast rounded nothing on " << d.str();
    for (size_t k = 0; k < fused.grads.size(); ++k) {
      EXPECT_LT(max_abs_diff(fused.grads[k], composed.grads[k]), 1e-4) << "gradient of " << names[k] << " on " << d.str();
      if (k + 1 < fused.grads.size()) {  // b2's gradient is sum(up) whatever the GEMMs do
        EXPECT_GT(max_abs_diff(composed.grads[k], exact.grads[k]), 1e-5) << "gradient of " << names[k] << " on " << d.str();
      }
    }
  }
}

TEST(Autocast, AppliesToItsDeviceTypeOnItsThreadWithinItsScope) {
  Generator gen(4);
  const Tensor a = randn({16, 32}, DType::F32, Device::cpu(), &gen), b = randn({32, 8}, DType::F32, Device::cpu(), &gen);
  const std::vector<float> exact = to_vector<float>(matmul(a, b));
  const std::vector<float> bf16 = to_vector<float>(to(matmul(rounded(a), rounded(b)), DType::F32));
  auto same = [](const std::vector<float>& x, const std::vector<float>& y) {
    for (size_t i = 0; i < x.size(); ++i)
      if (std::fabs(x[i] - y[i]) > 1e-5f * std::max(1.0f, std::fabs(y[i]))) return false;
    return true;
  };
  ASSERT_FALSE(same(exact, bf16)) << "the test needs products that rounding changes";
  const std::vector<double> exact64 = to_vector<double>(matmul(a.to(DType::F64), b.to(DType::F64)));
  EXPECT_FALSE(autocast_bf16(DeviceType::CPU));
  {
    AutocastBf16 cuda_only(DeviceType::CUDA);
    EXPECT_TRUE(same(to_vector<float>(matmul(a, b)), exact)) << "a CUDA guard leaves CPU tensors alone";
  }
  {
    AutocastBf16 on(DeviceType::CPU);
    EXPECT_TRUE(same(to_vector<float>(matmul(a, b)), bf16));
    std::vector<float> other_thread;
    std::thread([&] { other_thread = to_vector<float>(matmul(a, b)); }).join();
    EXPECT_TRUE(same(other_thread, exact)) << "the guard is this thread's";
    {
      AutocastBf16 off(DeviceType::CPU, false);
      EXPECT_TRUE(same(to_vector<float>(matmul(a, b)), exact)) << "a nested guard switches it off";
    }
    EXPECT_TRUE(autocast_bf16(DeviceType::CPU)) << "and the outer one is back after it";
    // f64 tensors are left alone: the same bits as outside the guard.
    EXPECT_EQ(to_vector<double>(matmul(a.to(DType::F64), b.to(DType::F64))), exact64);
    NoGradGuard no_grad;  // no graph: still rounded (the composed attention's products)
    EXPECT_TRUE(same(to_vector<float>(matmul(a, b)), bf16));
  }
  EXPECT_FALSE(autocast_bf16(DeviceType::CPU));
}

// A node decides in forward: rounded forward, backward outside the guard: still the rounded
// gradients; exact forward, backward inside a guard: still exact.
TEST(Autocast, TheNodeDecidesInForward) {
  Generator gen(6);
  const Tensor a0 = randn({12, 20}, DType::F32, Device::cpu(), &gen), b0 = randn({20, 9}, DType::F32, Device::cpu(), &gen);
  const Tensor up = randn({12, 9}, DType::F32, Device::cpu(), &gen);
  const Tensor ra = rounded(a0), rb = rounded(b0), ru = rounded(up);
  const Tensor want_rounded = matmul(ru, transpose(rb, 0, 1)), scale = matmul(abs(ru), transpose(abs(rb), 0, 1));
  {
    Tensor a = a0.clone().set_requires_grad();
    Tensor loss;
    {
      AutocastBf16 on(DeviceType::CPU);
      loss = sum(mul(matmul(a, b0), up));
    }
    loss.backward();
    expect_rounded(a.grad(), want_rounded, scale, "rounded forward, backward after the guard");
  }
  {
    Tensor a = a0.clone().set_requires_grad();
    Tensor loss = sum(mul(matmul(a, b0), up));
    {
      AutocastBf16 on(DeviceType::CPU);
      loss.backward();
    }
    expect_rounded(a.grad(), matmul(f64(up), transpose(f64(b0), 0, 1)), scale, "exact forward, backward in a guard");
  }
}

// No cached blocks while measuring: the allocator hands out a cached block of up to twice the
// size asked for (and counts it whole), so what is held would depend on which temporaries
// were freed before. Puts the limit back however the scope ends.
struct NoHostCache {
  size_t previous = host_cache_limit();
  NoHostCache() { host_set_cache_limit(0); }
  ~NoHostCache() { host_set_cache_limit(previous); }
};

// Between forward and backward a chain of linear layers keeps each layer's input for its
// weight gradient: bf16 under autocast, the f32 inputs without it. The weights are kept as
// the f32 parameters either way.
size_t held_by_linear_chain(bool autocast_on) {
  constexpr int kLayers = 8;
  constexpr int64_t kRows = 4096, kWidth = 128;
  Generator gen(8);
  std::vector<Tensor> weights;
  for (int l = 0; l < kLayers; ++l)
    weights.push_back(mul(randn({kWidth, kWidth}, DType::F32, Device::cpu(), &gen), 0.09).detach().set_requires_grad());
  const Tensor bias = zeros({kWidth}).set_requires_grad();
  const Tensor x = randn({kRows, kWidth}, DType::F32, Device::cpu(), &gen);
  AutocastBf16 autocast(DeviceType::CPU, autocast_on);
  NoHostCache no_cache;
  const size_t before = host_memory_stats().in_use;
  Tensor y = x;
  for (int l = 0; l < kLayers; ++l) y = l % 2 ? linear(y, weights[l], bias) : linear(y, weights[l]);
  const size_t held = host_memory_stats().in_use - before;
  sum(y).backward();
  return held;
}

// Attention's q, k and v projections of one input: f32 keeps that input once; autocast keeps
// one rounded copy of it, shared by the three (not three copies).
size_t held_by_three_projections(bool autocast_on) {
  constexpr int64_t kRows = 4096, kWidth = 128;
  Generator gen(9);
  const Tensor x = randn({kRows, kWidth}, DType::F32, Device::cpu(), &gen).set_requires_grad();
  std::vector<Tensor> w, b;
  for (int i = 0; i < 3; ++i) {
    w.push_back(mul(randn({kWidth, kWidth}, DType::F32, Device::cpu(), &gen), 0.09).detach().set_requires_grad());
    b.push_back(zeros({kWidth}).set_requires_grad());
  }
  AutocastBf16 autocast(DeviceType::CPU, autocast_on);
  NoHostCache no_cache;
  const size_t before = host_memory_stats().in_use;
  Tensor h = layer_norm(x, ones({kWidth}), zeros({kWidth}));  // the shared input, made here
  Tensor y = add(add(linear(h, w[0], b[0]), linear(h, w[1], b[1])), linear(h, w[2], b[2]));
  h = Tensor();
  const size_t held = host_memory_stats().in_use - before;
  sum(y).backward();
  return held;
}

TEST(Autocast, KeepsBf16OperandsBetweenForwardAndBackward) {
  const double mib = 1 << 20;
  {
    const double f32 = held_by_linear_chain(false) / mib, bf16 = held_by_linear_chain(true) / mib;
    // f32: seven kept inputs and the output, 8 x 2 MiB (x is the caller's). bf16: eight
    // rounded inputs (1 MiB each), the f32 output, and three rounded weights (32 KiB each):
    // the linears without a bias are matmul nodes, which keep both rounded operands (the
    // first one's weight is not kept: its input needs no gradient); those with a bias keep
    // the f32 parameter.
    EXPECT_NEAR(f32, 16.0, 0.02);
    EXPECT_NEAR(bf16, 10.0 + 3.0 / 32, 0.02) << "f32 " << f32 << " MiB";
  }
  {
    const double f32 = held_by_three_projections(false) / mib, bf16 = held_by_three_projections(true) / mib;
    // Both keep y (2 MiB) and what layer_norm keeps (its input is the caller's; its row
    // statistics are small); f32 keeps h (2 MiB), bf16 one rounded h (1 MiB).
    EXPECT_NEAR(f32 - bf16, 1.0, 0.1) << "f32 " << f32 << " MiB, bf16 " << bf16 << " MiB";
  }
}

// The rounded copy of a view is made once while it lives: asked again for the same values it
// comes back; after the values change, or once the copy is gone, a new one is made.
TEST(Autocast, RoundsAViewOnceWhileItsCopyLives) {
  Generator gen(10);
  Tensor x = randn({64, 32}, DType::F32, Device::cpu(), &gen);
  Tensor r1 = detail::rounded_to_bf16(x);
  EXPECT_TRUE(detail::rounded_to_bf16(x).storage().data() == r1.storage().data()) << "the same values again";
  const Tensor again = detail::rounded_to_bf16(reshape(x, {64, 32}));
  EXPECT_TRUE(again.storage().data() == r1.storage().data()) << "another view object of the same values";
  EXPECT_EQ(again.shape(), r1.shape());
  EXPECT_EQ(again.strides(), r1.strides());
  EXPECT_EQ(again.dtype(), DType::BF16);
  EXPECT_EQ(to_vector<float>(again.to(DType::F32)), to_vector<float>(x.to(DType::BF16).to(DType::F32)));
  {
    // A transposed view's copy, asked for again, comes back with its own layout.
    const Tensor t1 = detail::rounded_to_bf16(x.transpose(0, 1)), t2 = detail::rounded_to_bf16(x.transpose(0, 1));
    EXPECT_TRUE(t1.storage().data() == t2.storage().data());
    EXPECT_EQ(t2.strides(), t1.strides());
    EXPECT_EQ(to_vector<float>(t2.to(DType::F32)), to_vector<float>(x.transpose(0, 1).to(DType::BF16).to(DType::F32)));
  }
  EXPECT_FALSE(detail::rounded_to_bf16(x.transpose(0, 1)).storage().data() == r1.storage().data())
      << "another layout";
  add_(x, 1.0);
  Tensor r2 = detail::rounded_to_bf16(x);
  EXPECT_FALSE(r2.storage().data() == r1.storage().data()) << "modified in place: rounded again";
  EXPECT_EQ(to_vector<float>(r2.to(DType::F32)), to_vector<float>(x.to(DType::BF16).to(DType::F32)));
  detail::forget_rounded_copies();
  EXPECT_FALSE(detail::rounded_to_bf16(x).storage().data() == r2.storage().data()) << "after forgetting";
}

// The GEMM slots take bf16 operands only with an f32 product (backends/backend.h): any other
// mix is an error naming the dtypes, on the CPU as on CUDA (Bf16GemmCuda).
TEST(Autocast, GemmSlotsRefuseOtherDtypeMixes) {
  const Tensor a16 = zeros({2, 3}).to(DType::BF16), b16 = zeros({3, 4}).to(DType::BF16), b32 = zeros({3, 4});
  mmtest::expect_error([&] { cpu::matmul(zeros({2, 4}), a16, b32, false); }, "matmul",
                       {"bf16 x f32 -> f32 is not supported"});
  mmtest::expect_error([&] { cpu::matmul(zeros({2, 4}, DType::F64), a16, b16, false); }, "matmul",
                       {"bf16 x bf16 -> f64 is not supported"});
  mmtest::expect_error([&] { cpu::matmul_bias(zeros({2, 4}), a16, b32, zeros({4})); }, "matmul_bias",
                       {"bf16 x f32 -> f32 is not supported"});
  const Tensor out = zeros({2, 4});
  cpu::matmul(out, a16, b16, false);  // the one mix that is taken
  EXPECT_EQ(to_vector<float>(out), std::vector<float>(8, 0.0f));
}

// A batched, dense a times one matrix is folded into one GEMM, empty K included.
TEST(Autocast, TheProductOfEmptySumsIsZero) {
  const Tensor a = Tensor::empty({2, 3, 0}), b = Tensor::empty({0, 4});
  const Tensor p = detail::matmul_product(a, b);
  EXPECT_EQ(p.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(to_vector<float>(p), std::vector<float>(24, 0.0f));
}

// The composed attention (matmul and softmax in one node) under autocast: its backward
// multiplies as its forward did even when the guard has closed by then (the engine restores
// the node's guards), so backward inside and after the guard give the same bits, and both
// differ from f32.
TEST(Autocast, TheComposedAttentionNodeMultipliesInBackwardAsInForward) {
  FusedAttentionGuard composed(false);
  Generator gen(12);
  auto r = [&] { return randn({2, 4, 9, 16}, DType::F32, Device::cpu(), &gen); };
  const Tensor q0 = r(), k0 = r(), v0 = r(), up = r();
  auto grads = [&](bool autocast_on, bool backward_inside) {
    Tensor q = q0.clone().set_requires_grad(), k = k0.clone().set_requires_grad(), v = v0.clone().set_requires_grad();
    Tensor loss;
    {
      AutocastBf16 autocast(DeviceType::CPU, autocast_on);
      loss = sum(mul(scaled_dot_product_attention(q, k, v, /*causal=*/true), up));
      if (backward_inside) loss.backward();
    }
    if (!backward_inside) {
      loss.backward();
      EXPECT_FALSE(autocast_bf16(DeviceType::CPU)) << "the engine puts the caller's guards back";
    }
    std::vector<float> all;
    for (const Tensor& t : {q.grad(), k.grad(), v.grad()})
      for (float f : to_vector<float>(t)) all.push_back(f);
    return all;
  };
  const std::vector<float> inside = grads(true, true), after = grads(true, false), exact = grads(false, true);
  EXPECT_EQ(after, inside);
  float worst = 0, scale = 0;
  for (size_t i = 0; i < exact.size(); ++i) {
    worst = std::max(worst, std::fabs(inside[i] - exact[i]));
    scale = std::max(scale, std::fabs(exact[i]));
  }
  EXPECT_GT(worst, 1e-4f * scale) << "autocast rounded nothing";
  EXPECT_LT(worst, 5e-2f * scale) << "bf16 operands keep about 3 decimal digits";
}

// One training step of a small CLIP with fusion and caption heads on the CPU under autocast:
// the loss and every gradient stay close to f32 (bf16 keeps 8 bits: about 1% per GEMM) but are
// not the same numbers.
TEST(Autocast, AClipStepStaysCloseToF32) {
  const nn::ModelConfig c = mmtest::tiny_clip_config(32, 2, 1);
  Generator data(3);
  const Tensor images = randn({6, 3, 16, 16}, DType::F32, Device::cpu(), &data);
  const Tensor tokens = mmtest::tiny_captions(6, [](int64_t b) { return 2 + b % 4; });
  auto step = [&](bool autocast_on) {
    Generator init(7);
    nn::ClipModel model(c, init);
    Generator neg(1);
    AutocastBf16 autocast(DeviceType::CPU, autocast_on);
    const nn::Losses l = nn::compute_losses(model, images, tokens, nn::ObjectiveWeights{1.0, 1.0, 1.0, false}, neg);
    l.total.backward();
    std::vector<double> grads;
    for (auto& [name, p] : model.named_parameters())
      for (double v : to_vector<double>(p.grad())) grads.push_back(v);
    return std::make_pair(item(l.total), grads);
  };
  const auto [loss32, grads32] = step(false);
  const auto [loss16, grads16] = step(true);
  EXPECT_NE(loss16, loss32);
  EXPECT_NEAR(loss16, loss32, 1e-2 * std::fabs(loss32));
  ASSERT_EQ(grads16.size(), grads32.size());
  double dot = 0, n16 = 0, n32 = 0;
  for (size_t i = 0; i < grads32.size(); ++i) {
    dot += grads16[i] * grads32[i];
    n16 += grads16[i] * grads16[i];
    n32 += grads32[i] * grads32[i];
  }
  EXPECT_GT(dot / std::sqrt(n16 * n32), 0.999) << "the gradient's direction";
  EXPECT_NEAR(std::sqrt(n16 / n32), 1.0, 1e-2) << "the gradient's size";
}

}  // namespace
