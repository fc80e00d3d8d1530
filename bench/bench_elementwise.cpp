// Throughput of elementwise, reduction and fused row ops at clip-tiny's activation sizes
// (../shared/spec/MODELS.md: vision 128 images x 65 tokens = 8320 rows, width 128, MLP 512).
// GB/s counts each input read once and each output written once.
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
  return 0;
}
