// Shared helpers for bench/ programs: median timing, the header line every benchmark
// prints (which BLAS kernel and how many threads the figures were measured with), and the
// GEMMs of one MODELS.md training step (bench_matmul times them one by one; bench_clip_step
// counts the model's FLOPs from them and times them as a plain-sgemm reference).
#pragma once
#include <algorithm>
#include <chrono>
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/blas_info.h"
#include "core/parallel.h"
#include "models/config.h"

namespace mmgrad::bench {

// Median wall time of `fn` in milliseconds over `reps` runs after `warmup` runs.
inline double median_ms(const std::function<void()>& fn, int reps = 7, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto s = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

inline void print_header(const char* title) {
  fmt::print("# {}\n# {}; mmgrad threads: {}\n", title, blas_summary(), num_threads());
}

// One GEMM shape of a training step: C[M, N] = op(A) op(B), A stored K x M when `ta`
// (else M x K), B stored N x K when `tb` (else K x N), row-major; `batch` independent
// products per occurrence (attention: samples x heads), `count` occurrences per step.
struct GemmShape {
  std::string name;
  int64_t M, N, K;
  bool ta, tb;
  int64_t batch;
  int64_t count;
  double flops() const { return 2.0 * static_cast<double>(M) * N * K * batch * count; }
};

// The three GEMMs of a Linear layer (in -> out) on `rows` rows, `n` times per step: forward
// y = x W^T (NT), dX = dY W (NN, unless the input needs no gradient) and dW = dY^T X (TN).
inline void add_linear(std::vector<GemmShape>& g, const std::string& name, int64_t rows, int64_t in, int64_t out,
                       int64_t n, bool need_dx = true) {
  if (n <= 0) return;
  g.push_back({name + " fwd", rows, out, in, false, true, 1, n});
  if (need_dx) g.push_back({name + " dX", rows, in, out, false, false, 1, n});
  g.push_back({name + " dW", out, in, rows, true, false, 1, n});
}

// The six per-head GEMMs of attention with t queries, s keys and head dim d: forward
// S = Q K^T, O = P V; backward dP = dO V^T, dV = P^T dO, dQ = dS K, dK = dS^T Q.
inline void add_attention(std::vector<GemmShape>& g, const std::string& name, int64_t t, int64_t s, int64_t d,
                          int64_t batch, int64_t layers) {
  if (layers <= 0) return;
  g.push_back({name + " QK^T", t, s, d, false, true, batch, layers});
  g.push_back({name + " PV", t, d, s, false, false, batch, layers});
  g.push_back({name + " dP=dO V^T", t, s, d, false, true, batch, layers});
  g.push_back({name + " dV=P^T dO", s, d, t, true, false, batch, layers});
  g.push_back({name + " dQ=dS K", t, d, s, false, false, batch, layers});
  g.push_back({name + " dK=dS^T Q", s, d, t, true, false, batch, layers});
}

// Every GEMM of one benchmark step of ../shared/spec/MODELS.md (forward + backward): both
// towers, the projections, the contrastive logits, and, with fusion layers, the ITM pass
// over 2B pairs (positives + one cyclic negative each). The caption decoder is not part of
// the benchmark step. The model FLOPs that bench_clip_step and bench/torch_clip_step.py
// report are the sum over this list (clip_torch.py's step_gemms mirrors it). They are the
// model's nominal FLOPs, with the pairs gathered, as PyTorch runs them: mmgrad's fusion runs
// image_proj, the cross-attention k/v and the first layer's self-attention once per distinct
// image or text (FusionTransformer's indexed pairs), about 6% fewer FLOPs on clip-tiny, so
// its model GFLOP/s may exceed a plain sgemm's at these shapes.
inline std::vector<GemmShape> clip_step_gemms(const nn::ModelConfig& c, int64_t B) {
  const int64_t Wv = c.vision_width, Wt = c.text_width, E = c.embed_dim, P = c.patch_size;
  const int64_t N = c.num_patches(), Nv = N + 1, T = c.context_length;
  std::vector<GemmShape> g;
  // Vision: the patch embedding (no dX: the images need no gradient), the layers.
  add_linear(g, "vis patch", B * N, 3 * P * P, Wv, 1, /*need_dx=*/false);
  add_linear(g, "vis q/k/v/out", B * Nv, Wv, Wv, 4 * c.vision_layers);
  add_linear(g, "vis fc1", B * Nv, Wv, 4 * Wv, c.vision_layers);
  add_linear(g, "vis fc2", B * Nv, 4 * Wv, Wv, c.vision_layers);
  add_attention(g, "vis attn", Nv, Nv, Wv / c.vision_heads, B * c.vision_heads, c.vision_layers);
  // Text.
  add_linear(g, "txt q/k/v/out", B * T, Wt, Wt, 4 * c.text_layers);
  add_linear(g, "txt fc1", B * T, Wt, 4 * Wt, c.text_layers);
  add_linear(g, "txt fc2", B * T, 4 * Wt, Wt, c.text_layers);
  add_attention(g, "txt attn", T, T, Wt / c.text_heads, B * c.text_heads, c.text_layers);
  // Projections and the B x B logits (I T^T; dI = dL T, dT = dL^T I).
  add_linear(g, "visual_projection", B, Wv, E, 1);
  add_linear(g, "text_projection", B, Wt, E, 1);
  g.push_back({"logits I T^T", B, B, E, false, true, 1, 1});
  g.push_back({"logits dI", B, E, B, false, false, 1, 1});
  g.push_back({"logits dT", B, E, B, true, false, 1, 1});
  if (c.fusion_layers > 0) {
    const int64_t pairs = 2 * B, L = c.fusion_layers, D = Wt / c.text_heads;
    add_linear(g, "fus image_proj", pairs * Nv, Wv, Wt, 1);
    add_linear(g, "fus self q/k/v/out", pairs * T, Wt, Wt, 4 * L);
    add_attention(g, "fus self attn", T, T, D, pairs * c.text_heads, L);
    add_linear(g, "fus cross q/out", pairs * T, Wt, Wt, 2 * L);
    add_linear(g, "fus cross k/v", pairs * Nv, Wt, Wt, 2 * L);
    add_attention(g, "fus cross attn", T, Nv, D, pairs * c.text_heads, L);
    add_linear(g, "fus fc1", pairs * T, Wt, 4 * Wt, L);
    add_linear(g, "fus fc2", pairs * T, 4 * Wt, Wt, L);
    add_linear(g, "fus itm_head", pairs, Wt, 2, 1);
  }
  return g;
}

// The benchmark's token ids (MODELS.md): uniform ids, the end-of-text token only at one
// uniform position in [1, context) per row; made on the CPU and moved to `device`.
inline Tensor random_clip_tokens(const nn::ModelConfig& c, int64_t batch, Generator& gen, Device device) {
  std::vector<int64_t> ids =
      to_vector<int64_t>(randint(0, c.vocab_size - 1, {batch, c.context_length}, DType::I64, Device::cpu(), &gen));
  std::vector<int64_t> eot = to_vector<int64_t>(randint(1, c.context_length, {batch}, DType::I64, Device::cpu(), &gen));
  for (int64_t b = 0; b < batch; ++b) {
    for (int64_t t = 0; t < c.context_length; ++t)
      if (ids[b * c.context_length + t] == c.eot_token_id) ids[b * c.context_length + t] = 0;
    ids[b * c.context_length + eot[b]] = c.eot_token_id;
  }
  return from_data(ids, {batch, c.context_length}, device);
}

inline double total_flops(const std::vector<GemmShape>& g) {
  double f = 0;
  for (const GemmShape& s : g) f += s.flops();
  return f;
}

}  // namespace mmgrad::bench
