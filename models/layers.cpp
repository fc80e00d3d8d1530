#include "models/layers.h"

#include "autograd/ops.h"

namespace mmgrad::nn {

Linear::Linear(int64_t in, int64_t out, bool with_bias, Generator& gen) {
  weight = mul(randn({out, in}, DType::F32, Device::cpu(), &gen), 0.02);
  register_parameter("weight", weight);
  if (with_bias) {
    bias = zeros({out});
    register_parameter("bias", bias);
  }
}

Tensor Linear::forward(const Tensor& x) const { return linear(x, weight, bias); }

LayerNorm::LayerNorm(int64_t width, double eps_) : eps(eps_) {
  weight = ones({width});
  bias = zeros({width});
  register_parameter("weight", weight);
  register_parameter("bias", bias);
}

Tensor LayerNorm::forward(const Tensor& x) const { return layer_norm(x, weight, bias, eps); }

Embedding::Embedding(int64_t num, int64_t width, Generator& gen) {
  weight = mul(randn({num, width}, DType::F32, Device::cpu(), &gen), 0.02);
  register_parameter("weight", weight);
}

Tensor Embedding::forward(const Tensor& ids) const { return embedding(weight, ids); }

Activation parse_activation(const std::string& name) {
  if (name == "gelu") return Activation::Gelu;
  if (name == "quick_gelu") return Activation::QuickGelu;
  fail("activation", "unknown activation '" + name + "' (expected gelu or quick_gelu)");
}

Tensor activate(Activation act, const Tensor& x) {
  return act == Activation::Gelu ? gelu(x) : quick_gelu(x);
}

Mlp::Mlp(int64_t width, int64_t hidden, Activation act_, Generator& gen)
    : fc1(width, hidden, true, gen), fc2(hidden, width, true, gen), act(act_) {
  register_module("fc1", fc1);
  register_module("fc2", fc2);
}

Tensor Mlp::forward(const Tensor& x) const { return fc2.forward(activate(act, fc1.forward(x))); }

Tensor Mlp::forward_normalised(const LayerNorm& norm, const Tensor& x) const {
  return layer_norm_mlp(x, norm.weight, norm.bias, norm.eps, fc1.weight, fc1.bias, fc2.weight, fc2.bias,
                        act == Activation::QuickGelu);
}

Attention::Attention(int64_t width, int64_t heads_, Generator& gen)
    : q_proj(width, width, true, gen), k_proj(width, width, true, gen),
      v_proj(width, width, true, gen), out_proj(width, width, true, gen), heads(heads_) {
  if (heads <= 0 || width % heads != 0)
    fail("Attention", "width " + std::to_string(width) + " is not divisible into " +
                          std::to_string(heads) + " heads");
  register_module("q_proj", q_proj);
  register_module("k_proj", k_proj);
  register_module("v_proj", v_proj);
  register_module("out_proj", out_proj);
}

Tensor Attention::forward(const Tensor& x, const Tensor& memory, bool causal, const Tensor& mask,
                          const Tensor& memory_index) const {
  if (x.dim() != 3) fail("Attention", "expects x [B, T, W]", {describe("x", x)});
  const Tensor& kv = memory.defined() ? memory : x;
  if (memory_index.defined()) {
    if (!memory.defined()) fail("Attention", "memory_index needs a memory (cross-attention)");
    if (memory_index.dim() != 1 || memory_index.shape()[0] != x.shape()[0] || !is_integral(memory_index.dtype()))
      fail("Attention", "expects memory_index as integers [B], one memory row per batch entry of x",
           {describe("x", x), describe("memory_index", memory_index)});
    if (kv.dim() != 3) fail("Attention", "expects memory [U, S, W]", {describe("memory", kv)});
  } else if (kv.dim() != 3 || kv.shape()[0] != x.shape()[0]) {
    fail("Attention", "expects memory [B, S, W] with x's batch size", {describe("x", x), describe("memory", kv)});
  }
  const int64_t B = x.shape()[0], T = x.shape()[1], S = kv.shape()[1], W = x.shape()[2];
  const int64_t D = W / heads;
  // [B, T, W] -> [B, heads, T, D]: a view and a permute; the kernels take the strides.
  auto split_heads = [&](const Tensor& t, int64_t len) {
    return permute(reshape(t, {B, len, heads, D}), {0, 2, 1, 3});
  };
  Tensor q = split_heads(q_proj.forward(x), T);
  // Projected once per distinct memory, then gathered per row (index_select checks the range).
  auto project = [&](const Linear& proj) {
    Tensor t = proj.forward(kv);
    return memory_index.defined() ? index_select(t, 0, memory_index) : t;
  };
  Tensor k = split_heads(project(k_proj), S);
  Tensor v = split_heads(project(v_proj), S);
  Tensor o = scaled_dot_product_attention(q, k, v, causal, mask);
  return out_proj.forward(reshape(permute(o, {0, 2, 1, 3}), {B, T, W}));
}

EncoderLayer::EncoderLayer(int64_t width, int64_t heads, Activation act, Generator& gen)
    : layer_norm1(width), self_attn(width, heads, gen), layer_norm2(width), mlp(width, 4 * width, act, gen) {
  register_module("self_attn", self_attn);
  register_module("layer_norm1", layer_norm1);
  register_module("mlp", mlp);
  register_module("layer_norm2", layer_norm2);
}

Tensor EncoderLayer::forward(const Tensor& x, bool causal, const Tensor& mask) const {
  Tensor h = add(x, self_attn.forward(layer_norm1.forward(x), Tensor(), causal, mask));
  return add(h, mlp.forward_normalised(layer_norm2, h));
}

CrossAttentionLayer::CrossAttentionLayer(int64_t width, int64_t heads, Activation act, Generator& gen)
    : layer_norm1(width), self_attn(width, heads, gen), layer_norm_cross(width), cross_attn(width, heads, gen),
      layer_norm2(width), mlp(width, 4 * width, act, gen) {
  register_module("layer_norm1", layer_norm1);
  register_module("self_attn", self_attn);
  register_module("layer_norm_cross", layer_norm_cross);
  register_module("cross_attn", cross_attn);
  register_module("layer_norm2", layer_norm2);
  register_module("mlp", mlp);
}

Tensor CrossAttentionLayer::forward(const Tensor& x, const Tensor& memory, bool causal,
                                   const Tensor& memory_index, const Tensor& x_index) const {
  if (x_index.defined() && (x_index.dim() != 1 || !is_integral(x_index.dtype())))
    fail("CrossAttentionLayer", "expects x_index as integers [B], one row of x per output row",
         {describe("x", x), describe("x_index", x_index)});
  Tensor h = add(x, self_attn.forward(layer_norm1.forward(x), Tensor(), causal));
  if (x_index.defined()) h = index_select(h, 0, x_index);
  h = add(h, cross_attn.forward(layer_norm_cross.forward(h), memory, false, Tensor(), memory_index));
  return add(h, mlp.forward_normalised(layer_norm2, h));
}

}  // namespace mmgrad::nn
