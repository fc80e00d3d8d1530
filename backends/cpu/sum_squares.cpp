// Sums of squares of many tensors in one pass (a gradient norm over every parameter).
//
// Why: a norm built from ops costs a dtype conversion, a square, a sum and an add per
// parameter; a model has a hundred or more parameters, most of them small (biases,
// LayerNorm weights), so the per-op overhead outweighs the arithmetic. Here every tensor is
// cut into fixed chunks, the chunks of all tensors run in one parallel_for
// (tensor_chunks.h), and each tensor's chunk partials are added in order, so the result is
// the same on any number of threads.
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/tensor_chunks.h"

namespace mmgrad::cpu {
namespace {

constexpr int64_t kChunk = int64_t{1} << 14;

// Eight independent f64 accumulators (the compiler vectorises them; one would serialise
// every add on the previous one).
template <typename T>
double sum_squares_run(const T* x, int64_t n) {
  double acc[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int j = 0; j < 8; ++j) {
      const double v = static_cast<double>(x[i + j]);
      acc[j] += v * v;
    }
  for (; i < n; ++i) {
    const double v = static_cast<double>(x[i]);
    acc[0] += v * v;
  }
  return ((acc[0] + acc[1]) + (acc[2] + acc[3])) + ((acc[4] + acc[5]) + (acc[6] + acc[7]));
}

}  // namespace

void sum_squares(const Tensor& out, const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return;
  double* o = out.data_ptr<double>();
  dispatch_float(tensors[0].dtype(), "sum_squares", [&](auto tag) {
    using T = decltype(tag);
    auto numel = [&](size_t t) { return tensors[t].numel(); };
    const std::vector<int64_t> first_chunk = first_chunks(numel, tensors.size(), kChunk);
    std::vector<double> partial(static_cast<size_t>(first_chunk.back()));
    for_each_chunk(first_chunk, numel, kChunk, [&](size_t t, int64_t c, int64_t begin, int64_t end) {
      partial[static_cast<size_t>(c)] = sum_squares_run(tensors[t].data_ptr<T>() + begin, end - begin);
    });
    for (size_t t = 0; t < tensors.size(); ++t) {
      double s = 0;
      for (int64_t c = first_chunk[t]; c < first_chunk[t + 1]; ++c) s += partial[static_cast<size_t>(c)];
      o[t] = s;
    }
  });
}

}  // namespace mmgrad::cpu
