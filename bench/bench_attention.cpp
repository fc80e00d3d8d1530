// Scaled-dot-product attention at the models' own shapes: the fused kernel (forward, and
// forward + backward) against the composed ops (matmul, softmax, matmul), side by side.
// q, k and v are the head-split views the model passes ([B, heads, T, D] permuted from
// [B, T, heads, D]). GFLOP/s counts the products as the training step's MFU does (forward
// Q K^T and P V; backward recomputes Q K^T and forms dP, dQ, dK, dV), so it compares
// directly with bench_matmul's figures. Rounds alternate the two paths so that drift on a
// shared machine hits both alike; each figure is the best round's median.
// --fused-only skips the composed ops (for profiling the kernel: perf record ... --fused-only).
#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"

using namespace mmgrad;

namespace {

struct Case {
  const char* name;
  int64_t batch, heads, T, S, D;
  bool causal;
};

Tensor head_split(int64_t B, int64_t len, int64_t heads, int64_t D) {
  Tensor t = permute(randn({B, len, heads, D}), {0, 2, 1, 3}).detach();  // a leaf with the view's strides
  t.set_requires_grad();
  return t;
}

}  // namespace

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  bool fused_only = false;
  for (int i = 1; i < argc; ++i) {
    const std::string arg = argv[i];
    if (arg == "--fused-only") {
      fused_only = true;
    } else {
      fmt::print(stderr, "bench_attention: unknown option '{}' (known: --fused-only)\n", arg);
      return 2;
    }
  }
  bench::print_header("attention: fused kernel against composed ops (f32)");
  const Case cases[] = {
      {"shapes-small vision 65x65 D24", 64, 4, 65, 65, 24, false},
      {"shapes-small text 16x16 D24 causal", 64, 4, 16, 16, 24, true},
      {"shapes-small cross 16x65 D24", 64, 4, 16, 65, 24, false},
      {"clip-tiny vision 65x65 D32", 128, 4, 65, 65, 32, false},
      {"clip-tiny text 32x32 D32 causal", 128, 4, 32, 32, 32, true},
  };
  fmt::print("{:<36} {:>9} {:>9} {:>9} {:>9} {:>11} {:>9}\n", "case", "fwd ms", "GFLOP/s", "f+b ms", "GFLOP/s",
             "composed ms", "speedup");
  for (const Case& c : cases) {
    Tensor q = head_split(c.batch, c.T, c.heads, c.D), k = head_split(c.batch, c.S, c.heads, c.D),
           v = head_split(c.batch, c.S, c.heads, c.D);
    Tensor g = randn({c.batch, c.heads, c.T, c.D});
    const double slices = static_cast<double>(c.batch * c.heads), ts = static_cast<double>(c.T * c.S);
    const double fwd_flops = slices * ts * 4.0 * c.D, bwd_flops = slices * ts * 10.0 * c.D;
    auto forward = [&] {
      NoGradGuard no_grad;
      scaled_dot_product_attention(q, k, v, c.causal);
    };
    auto both = [&] {
      for (const Tensor* t : {&q, &k, &v}) t->set_grad(Tensor());  // backward then stores, not adds
      Tensor out = scaled_dot_product_attention(q, k, v, c.causal);
      autograd::backward(out, g);
    };
    double fwd = 1e30, fused = 1e30, composed = 1e30;
    for (int round = 0; round < 3; ++round) {
      fwd = std::min(fwd, bench::median_ms(forward));
      fused = std::min(fused, bench::median_ms(both));
      if (fused_only) continue;
      FusedAttentionGuard off(false);
      composed = std::min(composed, bench::median_ms(both));
    }
    fmt::print("{:<36} {:>9.3f} {:>9.1f} {:>9.3f} {:>9.1f} {:>11.3f} {:>9.2f}\n", c.name, fwd,
               fwd_flops / fwd / 1e6, fused, (fwd_flops + bwd_flops) / fused / 1e6, fused_only ? 0.0 : composed,
               fused_only ? 0.0 : composed / fused);
  }
  return 0;
}
