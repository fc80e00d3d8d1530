// Transformer building blocks with the parameter names of ../shared/spec/MODELS.md (Hugging
// Face CLIP layout). Initial values are simple defaults (normal(0, 0.02) weights, zero
// biases, LayerNorm ones/zeros); the models apply CLIP's own initialisation on top.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/rng.h"
#include "models/module.h"

namespace mmgrad::nn {

// y = x W^T + b, weight [out, in].
class Linear : public Module {
 public:
  Linear(int64_t in, int64_t out, bool bias, Generator& gen);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
};

class LayerNorm : public Module {
 public:
  explicit LayerNorm(int64_t width, double eps = 1e-5);
  Tensor forward(const Tensor& x) const;
  Tensor weight, bias;
  double eps;
};

// weight [num, width]; forward maps integer ids of any shape to [..., width].
class Embedding : public Module {
 public:
  Embedding(int64_t num, int64_t width, Generator& gen);
  Tensor forward(const Tensor& ids) const;
  Tensor weight;
};

enum class Activation { Gelu, QuickGelu };
Activation parse_activation(const std::string& name);  // "gelu" | "quick_gelu"
Tensor activate(Activation act, const Tensor& x);

// fc1 (w -> hidden) -> activation -> fc2 (hidden -> w).
class Mlp : public Module {
 public:
  Mlp(int64_t width, int64_t hidden, Activation act, Generator& gen);
  Tensor forward(const Tensor& x) const;
  // forward(norm.forward(x)) as one fused node (layer_norm_mlp): the same values, with the
  // normalised input and the activation recomputed in backward instead of kept.
  Tensor forward_normalised(const LayerNorm& norm, const Tensor& x) const;
  Linear fc1, fc2;
  Activation act;
};

// Multi-head attention with separate q/k/v/out projections (all with bias), scores scaled by
// 1/sqrt(head_dim). Self-attention when `memory` is undefined, cross-attention onto it
// otherwise. x [B, T, W], memory [B, S, Wm] (Wm = W).
// memory_index (integer [B], optional) lets B queries share U < B memories: memory is then
// [U, S, Wm] and row b attends to memory[memory_index[b]]. The same result as gathering the
// memory first, but k_proj and v_proj run once per distinct memory, not once per row (the
// ITM pairs reuse each image three times).
class Attention : public Module {
 public:
  Attention(int64_t width, int64_t heads, Generator& gen);
  // mask, if given, broadcasts to [B, heads, T, S] (see scaled_dot_product_attention).
  Tensor forward(const Tensor& x, const Tensor& memory = Tensor(), bool causal = false,
                 const Tensor& mask = Tensor(), const Tensor& memory_index = Tensor()) const;
  Linear q_proj, k_proj, v_proj, out_proj;
  int64_t heads;
};

// Pre-LayerNorm transformer layer: x += self_attn(layer_norm1(x)); x += mlp(layer_norm2(x)).
class EncoderLayer : public Module {
 public:
  EncoderLayer(int64_t width, int64_t heads, Activation act, Generator& gen);
  Tensor forward(const Tensor& x, bool causal = false, const Tensor& mask = Tensor()) const;
  LayerNorm layer_norm1;
  Attention self_attn;
  LayerNorm layer_norm2;
  Mlp mlp;
};

// Pre-LayerNorm layer with cross-attention between self-attention and MLP (the fusion and
// caption layers of MODELS.md): x += self_attn(ln1(x)); x += cross_attn(ln_cross(x), memory);
// x += mlp(ln2(x)).
class CrossAttentionLayer : public Module {
 public:
  CrossAttentionLayer(int64_t width, int64_t heads, Activation act, Generator& gen);
  // memory_index: as in Attention (row b attends to memory[memory_index[b]]).
  // x_index (integer [B], optional): x holds distinct sequences and output row b continues
  // x[x_index[b]]. The self-attention half depends on the sequence alone, so it runs once per
  // distinct sequence and is gathered before the cross-attention (the ITM pairs use each text
  // two or three times).
  Tensor forward(const Tensor& x, const Tensor& memory, bool causal = false,
                 const Tensor& memory_index = Tensor(), const Tensor& x_index = Tensor()) const;
  LayerNorm layer_norm1;
  Attention self_attn;
  LayerNorm layer_norm_cross;
  Attention cross_attn;
  LayerNorm layer_norm2;
  Mlp mlp;
};

// `layers.0`, `layers.1`, ...: n layers built with the same arguments, applied in order.
template <typename Layer>
class LayerStack : public Module {
 public:
  template <typename... Args>
  LayerStack(int64_t n, Args&&... args) {
    for (int64_t i = 0; i < n; ++i) {
      layers.push_back(std::make_unique<Layer>(args...));
      register_module("layers." + std::to_string(i), *layers.back());
    }
  }
  template <typename... Args>
  Tensor forward(const Tensor& x, const Args&... args) const {
    Tensor h = x;
    for (const auto& layer : layers) h = layer->forward(h, args...);
    return h;
  }
  std::vector<std::unique_ptr<Layer>> layers;
};

using Encoder = LayerStack<EncoderLayer>;
using CrossAttentionEncoder = LayerStack<CrossAttentionLayer>;

}  // namespace mmgrad::nn
