// Recomputation in backward (attention probabilities, the fused MLP's normalised input and
// activation): the same gradients as keeping them, and less memory held between forward
// and backward.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "backends/backend.h"
#include "core/host_allocator.h"
#include "models/layers.h"

using namespace mmgrad;

namespace {

// A pre-LayerNorm MLP's input x [..., W] and parameters (hidden width H), drawn from gen.
struct MlpInputs {
  Tensor x, lw, lb, w1, b1, w2, b2;
  std::vector<Tensor> all() const { return {x, lw, lb, w1, b1, w2, b2}; }
};
MlpInputs mlp_inputs(Generator& gen, DType dtype, const Shape& x_shape, int64_t H) {
  const int64_t W = x_shape.back();
  auto draw = [&](const Shape& s) { return randn(s, dtype, Device::cpu(), &gen).set_requires_grad(); };
  MlpInputs m;
  m.x = draw(x_shape);
  m.lw = add(randn({W}, dtype, Device::cpu(), &gen), 1.0).set_requires_grad();
  m.lb = draw({W});
  m.w1 = draw({H, W});
  m.b1 = draw({H});
  m.w2 = draw({W, H});
  m.b2 = draw({W});
  return m;
}

std::vector<std::vector<double>> grads_of(bool recompute, DType dtype) {
  RecomputeGuard setting(recompute);
  Generator gen(3);
  const MlpInputs m = mlp_inputs(gen, dtype, {2, 5, 8}, 12);
  Tensor mask = randn({5, 5}, dtype, Device::cpu(), &gen).set_requires_grad();
  Tensor h = layer_norm_mlp(m.x, m.lw, m.lb, 1e-5, m.w1, m.b1, m.w2, m.b2);
  Tensor q = reshape(h, {2, 5, 2, 4}).transpose(1, 2);
  Tensor a = scaled_dot_product_attention(q, mul(q, 0.5), q, /*causal=*/true, mask);
  sum(mul(a, a)).backward();
  std::vector<std::vector<double>> out;
  std::vector<Tensor> inputs = m.all();
  inputs.push_back(mask);
  for (const Tensor& t : inputs) out.push_back(to_vector<double>(t.grad()));
  return out;
}

TEST(Recompute, GradientsEqualKeepingTheIntermediates) {
  const auto kept = grads_of(false, DType::F64), recomputed = grads_of(true, DType::F64);
  ASSERT_EQ(kept.size(), recomputed.size());
  for (size_t i = 0; i < kept.size(); ++i) {
    ASSERT_EQ(kept[i].size(), recomputed[i].size());
    for (size_t j = 0; j < kept[i].size(); ++j)
      EXPECT_NEAR(recomputed[i][j], kept[i][j], 1e-12 * (1 + std::abs(kept[i][j]))) << "input " << i << " element " << j;
  }
}

// The fused MLP's backward on the CPU runs its activation in fixed chunks of 256 rows (one
// pass for the activation and its derivative, dW2 accumulated chunk by chunk): 600 rows are
// three chunks, the last ragged. Gradients must equal the plain composition's.
std::vector<std::vector<double>> mlp_grads(bool recompute, DType dtype, bool quick) {
  RecomputeGuard setting(recompute);
  Generator gen(9);
  const MlpInputs m = mlp_inputs(gen, dtype, {3, 200, 8}, 24);
  Tensor y = layer_norm_mlp(m.x, m.lw, m.lb, 1e-5, m.w1, m.b1, m.w2, m.b2, quick);
  sum(mul(y, y)).backward();
  std::vector<std::vector<double>> out;
  for (const Tensor& t : m.all()) out.push_back(to_vector<double>(t.grad()));
  return out;
}

TEST(Recompute, MlpBackwardInRowChunksEqualsTheComposition) {
  ASSERT_NE(backend_for(Device::cpu()).activation_and_backward, nullptr);
  for (bool quick : {false, true})
    for (DType dtype : {DType::F64, DType::F32}) {
      SCOPED_TRACE(::testing::Message() << (quick ? "quick_gelu " : "gelu ") << dtype_name(dtype));
      const double tol = dtype == DType::F64 ? 1e-12 : 2e-5;
      const auto kept = mlp_grads(false, dtype, quick), fused = mlp_grads(true, dtype, quick);
      for (size_t i = 0; i < kept.size(); ++i) {
        ASSERT_EQ(kept[i].size(), fused[i].size());
        double scale = 0;
        for (double v : kept[i]) scale = std::max(scale, std::abs(v));
        for (size_t j = 0; j < kept[i].size(); ++j)
          ASSERT_NEAR(fused[i][j], kept[i][j], tol * (1 + scale)) << "input " << i << " element " << j;
      }
    }
}

// Bytes of tensors alive after the forward of two transformer layers (what backward keeps).
size_t held_after_forward(bool recompute) {
  RecomputeGuard setting(recompute);
  // The composed attention: the fused kernel never keeps the probabilities either way.
  FusedAttentionGuard composed(false);
  Generator gen(4);
  nn::LayerStack<nn::EncoderLayer> layers(2, 64, 4, nn::Activation::Gelu, gen);
  Tensor x = randn({16, 48, 64}, DType::F32, Device::cpu(), &gen);
  const size_t before = host_memory_stats().in_use;
  Tensor y = layers.forward(x, false, Tensor());
  const size_t held = host_memory_stats().in_use - before;
  sum(y).backward();
  return held;
}

TEST(Recompute, KeepsLessMemoryBetweenForwardAndBackward) {
  const size_t kept = held_after_forward(false), recomputed = held_after_forward(true);
  // Per layer, recomputation drops the probabilities [16, 4, 48, 48], the normalised MLP
  // input [768, 64] and the activation [768, 256]: 576 + 192 + 768 KiB of f32.
  const size_t per_layer = (16 * 4 * 48 * 48 + 768 * 64 + 768 * 256) * sizeof(float);
  ASSERT_GT(kept, recomputed);
  EXPECT_GE(kept - recomputed, 2 * per_layer * 95 / 100) << "kept " << kept << " bytes, recomputing " << recomputed;
}

}  // namespace
