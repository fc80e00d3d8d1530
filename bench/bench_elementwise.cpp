// Throughput of elementwise, reduction and fused row ops at clip-tiny's activation sizes
// (../shared/spec/MODELS.md: vision 128 images x 65 tokens = 8320 rows, width 128, MLP 512).
// GB/s counts each input read once and each output written once. A last table times a
// linear layer with its bias fused into the GEMM against matmul followed by the bias add,
// and the optimizer's gradient norm and AdamW over clip-tiny's parameters, fused over all
// parameters against one op sequence (or kernel) per parameter.
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"
#include "models/clip.h"

using namespace mmgrad;

int main(int argc, char** argv) {
  ensure_blas_kernels(argc, argv);
  bench::print_header("elementwise and reduction throughput (f32)");
  NoGradGuard no_grad;
  const int64_t rows = 8320, width = 128, hidden = 512;
  Tensor x = randn({rows, hidden});
  Tensor y = randn({rows, hidden});
  Tensor bias = randn({hidden});
  Tensor h = randn({rows, width});
  Tensor w = ones({width}), b = zeros({width});
  Tensor logits = randn({4096, 1024});
  Tensor target = randint(0, 1024, {4096});
  const double big = static_cast<double>(rows * hidden) * 4;  // bytes of one [8320, 512] tensor

  struct Row { const char* name; double bytes; std::function<void()> fn; };
  std::vector<Row> table = {
      {"copy (contiguous)", 2 * big, [&] { clone(x); }},
      {"copy (transpose 2-D)", 2 * big, [&] { contiguous(transpose(x, 0, 1)); }},
      {"add", 3 * big, [&] { add(x, y); }},
      {"add bias (broadcast row)", 2 * big, [&] { add(x, bias); }},
      {"mul scalar", 2 * big, [&] { mul(x, 0.5); }},
      {"exp", 2 * big, [&] { exp(x); }},
      {"gelu (erf)", 2 * big, [&] { gelu(x); }},
      {"quick_gelu", 2 * big, [&] { quick_gelu(x); }},
      {"sum all", big, [&] { sum(x); }},
      {"sum last dim", big, [&] { sum(x, {1}); }},
      {"sum first dim (bias grad)", big, [&] { sum(x, {0}); }},
      {"amax last dim", big, [&] { amax(x, {1}); }},
      {"softmax last dim", 2 * big, [&] { softmax(x, -1); }},
      {"layer_norm [8320,128]", 2.0 * rows * width * 4, [&] { layer_norm(h, w, b); }},
      {"cross_entropy [4096,1024]", 4096.0 * 1024 * 4, [&] { cross_entropy(logits, target); }},
  };
  fmt::print("{:<28} {:>10} {:>10}\n", "op", "ms", "GB/s");
  for (auto& r : table) {
    double ms = bench::median_ms(r.fn);
    fmt::print("{:<28} {:>10.3f} {:>10.2f}\n", r.name, ms, r.bytes / ms / 1e6);
  }

  // A linear layer's bias added by the GEMM as it stores each tile (linear) against a second
  // pass over the output (matmul, then add), at clip-tiny's and shapes-small's MLP shapes.
  // Rounds alternate the two so that drift on a shared machine hits both alike.
  fmt::print("\n{:<34} {:>10} {:>12} {:>7}\n", "linear with bias [rows, in -> out]", "fused ms", "mm + add ms",
             "ratio");
  const int64_t shapes[][3] = {{8320, 128, 512}, {8320, 512, 128}, {4160, 96, 384}, {4160, 384, 96}};
  for (const auto& s : shapes) {
    Tensor in = randn({s[0], s[1]}), weight = randn({s[2], s[1]}), bvec = randn({s[2]});
    double fused = 1e30, composed = 1e30;
    for (int round = 0; round < 3; ++round) {
      fused = std::min(fused, bench::median_ms([&] { linear(in, weight, bvec); }));
      composed = std::min(composed, bench::median_ms([&] { add(matmul(in, transpose(weight, 0, 1)), bvec); }));
    }
    fmt::print("{:<34} {:>10.3f} {:>12.3f} {:>7.2f}\n", fmt::format("[{}, {} -> {}]", s[0], s[1], s[2]), fused,
               composed, composed / fused);
  }

  // The optimizer's two passes over every parameter of clip-tiny: one fused pass over all
  // of them (what clip_grad_norm and AdamW::step run) against a few ops, or one kernel, per
  // parameter (what they ran before). Most parameters are small (biases, LayerNorm weights),
  // where a parallel dispatch per tensor costs more than its arithmetic.
  Generator gen(1);
  nn::ClipModel model(nn::preset("clip-tiny"), gen);
  std::vector<Tensor> ps, gs, ms, vs;
  std::vector<double> decays;
  for (auto& [name, p] : model.named_parameters()) {
    ps.push_back(p);
    gs.push_back(randn(p.shape()));
    ms.push_back(zeros(p.shape()));
    vs.push_back(zeros(p.shape()));
    decays.push_back(p.dim() >= 2 ? 0.999 : 1.0);
  }
  const AdamWStep step{1e-4, 0.9, 0.999, 1e-8, 1.0, 0.1, 0.001};
  auto norm_fused = [&] { item(sum(sum_of_squares(gs))); };
  auto norm_each = [&] {
    Tensor total;
    for (const Tensor& g : gs) {
      Tensor sq = sum(square(g.to(DType::F64)));
      total = total.defined() ? add(total, sq) : sq;
    }
    item(total);
  };
  auto adamw_fused = [&] { adamw_update_many_(ps, gs, ms, vs, decays, step); };
  auto adamw_each = [&] {
    for (size_t i = 0; i < ps.size(); ++i) {
      AdamWStep s = step;
      s.decay = decays[i];
      adamw_update_(ps[i], gs[i], ms[i], vs[i], s);
    }
  };
  fmt::print("\n{:<34} {:>10} {:>12} {:>7}\n", fmt::format("clip-tiny, {} parameters", ps.size()), "fused ms",
             "each ms", "ratio");
  const std::pair<const char*, std::pair<std::function<void()>, std::function<void()>>> passes[] = {
      {"gradient norm", {norm_fused, norm_each}}, {"AdamW update", {adamw_fused, adamw_each}}};
  for (const auto& [name, fns] : passes) {
    double fused = 1e30, each = 1e30;
    for (int round = 0; round < 3; ++round) {
      fused = std::min(fused, bench::median_ms(fns.first, 15, 3));
      each = std::min(each, bench::median_ms(fns.second, 15, 3));
    }
    fmt::print("{:<34} {:>10.3f} {:>12.3f} {:>7.2f}\n", name, fused, each, each / fused);
  }
  return 0;
}
