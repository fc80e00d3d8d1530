// Throughput of elementwise, reduction and fused row ops at clip-tiny's activation sizes
// (../shared/spec/MODELS.md: vision 128 images x 65 tokens = 8320 rows, width 128, MLP 512).
// GB/s counts each input read once and each output written once. A last table times a
// linear layer with its bias fused into the GEMM against matmul followed by the bias add.
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "bench/bench_common.h"

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
  return 0;
}
