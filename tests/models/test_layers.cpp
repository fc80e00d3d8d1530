// nn building blocks: parameter names (MODELS.md), counts, and forward values against the
// same computation written with plain ops.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <set>

#include "autograd/gradcheck.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/layers.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::nn;

namespace {
std::set<std::string> names_of(const Module& m) {
  std::set<std::string> out;
  for (const auto& [name, t] : m.named_parameters()) out.insert(name);
  return out;
}
}  // namespace

TEST(Layers, EncoderLayerHasTheHuggingFaceNames) {
  Generator gen(1);
  EncoderLayer layer(16, 2, Activation::Gelu, gen);
  std::set<std::string> want;
  for (const char* p : {"self_attn.q_proj", "self_attn.k_proj", "self_attn.v_proj", "self_attn.out_proj",
                        "mlp.fc1", "mlp.fc2", "layer_norm1", "layer_norm2"}) {
    want.insert(std::string(p) + ".weight");
    want.insert(std::string(p) + ".bias");
  }
  EXPECT_EQ(names_of(layer), want);
  EXPECT_EQ(layer.parameter("mlp.fc1.weight").shape(), (Shape{64, 16}));
  EXPECT_EQ(layer.parameter("self_attn.out_proj.bias").shape(), (Shape{16}));
  // 4 (W^2 + W) + (W*4W + 4W) + (4W*W + W) + 2 * 2W
  const int64_t W = 16;
  EXPECT_EQ(layer.num_parameters(), 4 * (W * W + W) + (4 * W * W + 4 * W) + (4 * W * W + W) + 4 * W);
  for (const Tensor& p : layer.parameters()) EXPECT_TRUE(p.requires_grad());
}

TEST(Layers, EncoderStackNamesLayersByIndexAndCountsLikeClipTiny) {
  Generator gen(2);
  Encoder enc(4, 128, 4, Activation::Gelu, gen);
  EXPECT_NO_THROW(enc.parameter("layers.3.self_attn.q_proj.weight"));
  // One clip-tiny layer of width 128 has 198,272 parameters.
  EXPECT_EQ(enc.num_parameters(), 4 * 198272);
  EXPECT_MMGRAD_ERROR(enc.parameter("layers.3.self_attn.q_proj.weigth"), "parameter",
                      "no parameter named", "layers.3.self_attn.q_proj.weight");
}

TEST(Layers, AttentionMatchesPlainOps) {
  Generator gen(3);
  Attention attn(8, 2, gen);
  attn.to(DType::F64);
  Tensor x = randn({2, 5, 8}, DType::F64, Device::cpu(), &gen);
  Tensor mem = randn({2, 3, 8}, DType::F64, Device::cpu(), &gen);
  for (bool cross : {false, true}) {
    for (bool causal : {false, true}) {
      if (cross && causal) continue;
      Tensor kv = cross ? mem : x;
      Tensor got = attn.forward(x, cross ? mem : Tensor(), causal);
      // Reference: per head, softmax(q k^T / sqrt(d) + mask) v, by explicit slicing.
      Tensor q = linear(x, attn.q_proj.weight, attn.q_proj.bias);
      Tensor k = linear(kv, attn.k_proj.weight, attn.k_proj.bias);
      Tensor v = linear(kv, attn.v_proj.weight, attn.v_proj.bias);
      std::vector<Tensor> heads;
      for (int64_t h = 0; h < 2; ++h) {
        Tensor qh = narrow(q, 2, 4 * h, 4), kh = narrow(k, 2, 4 * h, 4), vh = narrow(v, 2, 4 * h, 4);
        Tensor s = div(matmul(qh, transpose(kh, 1, 2)), 2.0);
        if (causal) {
          std::vector<double> m(25);
          for (int i = 0; i < 5; ++i)
            for (int j = 0; j < 5; ++j) m[i * 5 + j] = j > i ? -INFINITY : 0;
          s = add(s, from_data(m, {5, 5}));
        }
        heads.push_back(matmul(softmax(s, -1), vh));
      }
      Tensor want = linear(concat(heads, 2), attn.out_proj.weight, attn.out_proj.bias);
      EXPECT_TRUE(allclose(got, want, 1e-12, 1e-12)) << "cross " << cross << " causal " << causal;
    }
  }
}

TEST(Layers, EncoderLayerIsPreLayerNormAndDifferentiable) {
  Generator gen(4);
  EncoderLayer layer(8, 2, Activation::QuickGelu, gen);
  layer.to(DType::F64);
  // Random LayerNorm affine parameters, so they matter in the comparison.
  {
    NoGradGuard no_grad;
    for (Tensor* t : {&layer.layer_norm1.weight, &layer.layer_norm1.bias, &layer.layer_norm2.weight})
      copy_(*t, randn({8}, DType::F64, Device::cpu(), &gen));
  }
  Tensor x = randn({2, 4, 8}, DType::F64, Device::cpu(), &gen);
  Tensor got = layer.forward(x, true);
  Tensor h = add(x, layer.self_attn.forward(layer.layer_norm1.forward(x), Tensor(), true));
  Tensor want = add(h, layer.mlp.fc2.forward(quick_gelu(layer.mlp.fc1.forward(layer.layer_norm2.forward(h)))));
  EXPECT_TRUE(allclose(got, want, 1e-12, 1e-12));

  x.set_requires_grad();
  auto r = gradcheck([&](const std::vector<Tensor>& in) { return layer.forward(in[0], true); }, {x});
  EXPECT_TRUE(r.ok) << r.message;
  // Every parameter receives a gradient.
  layer.zero_grad();
  sum(layer.forward(x, true)).backward();
  for (const auto& [name, p] : layer.named_parameters()) EXPECT_TRUE(p.grad().defined()) << name;
  layer.zero_grad();
  for (const Tensor& p : layer.parameters()) EXPECT_FALSE(p.grad().defined());
}

TEST(Layers, BadConfigurationsAreErrors) {
  Generator gen(5);
  EXPECT_MMGRAD_ERROR(Attention(10, 3, gen), "Attention", "not divisible");
  EXPECT_MMGRAD_ERROR(parse_activation("relu6"), "activation", "unknown activation 'relu6'");
  Attention attn(8, 2, gen);
  EXPECT_MMGRAD_ERROR(attn.forward(zeros({5, 8})), "Attention", "[B, T, W]");
  EXPECT_MMGRAD_ERROR(attn.forward(zeros({2, 5, 8}), zeros({3, 4, 8})), "Attention", "batch size");
}

TEST(Layers, TrainAndEvalReachEveryModule) {
  Generator gen(6);
  Encoder enc(2, 8, 2, Activation::Gelu, gen);
  EXPECT_TRUE(enc.layers[1]->mlp.fc2.is_training());
  enc.eval();
  EXPECT_FALSE(enc.layers[1]->mlp.fc2.is_training());
  EXPECT_FALSE(enc.is_training());
}
