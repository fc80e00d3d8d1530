// Sums of squares of many tensors in two launches per group of tensors (a gradient norm
// over every parameter), where ops would take four launches per parameter: on a GPU the
// norm of a model with a hundred small parameters is launch-bound, not arithmetic-bound.
//
// The tensors' pointers and sizes travel as a kernel argument (a table of up to kGroup
// tensors; more tensors take more groups). Pass 1: one block per fixed chunk of one tensor
// squares and sums it in f64 into a partial. Pass 2: one warp per tensor adds its partials,
// lanes strided and then a fixed warp tree. Every sum has a fixed order: the result is
// deterministic. (The CPU twin is backends/cpu/sum_squares.cpp.)
#include <algorithm>
#include <vector>

#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {

constexpr int kGroup = 96;                 // tensors per launch (the table is ~2.3 KB)
constexpr int64_t kChunk = kThreads * 16;  // elements per block in pass 1

template <typename T>
struct Table {
  const T* data[kGroup];
  int64_t numel[kGroup];
  int64_t first_chunk[kGroup + 1];  // tensor t owns chunks [first_chunk[t], first_chunk[t + 1])
  int count;
};

template <typename T>
__global__ void chunk_sums_kernel(Table<T> table, double* partial) {
  __shared__ double warp_totals[kThreads / 32];
  const int64_t chunk = blockIdx.x;
  int t = 0;
  while (chunk >= table.first_chunk[t + 1]) ++t;
  const int64_t start = (chunk - table.first_chunk[t]) * kChunk;
  const int64_t end = start + kChunk < table.numel[t] ? start + kChunk : table.numel[t];
  const T* x = table.data[t];
  double acc = 0;
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x) {
    const double v = static_cast<double>(x[i]);
    acc += v * v;
  }
  acc = warp_sum(acc);
  if (threadIdx.x % 32 == 0) warp_totals[threadIdx.x / 32] = acc;
  __syncthreads();
  if (threadIdx.x < 32) {
    double s = threadIdx.x < kThreads / 32 ? warp_totals[threadIdx.x] : 0.0;
    s = warp_sum(s);
    if (threadIdx.x == 0) partial[chunk] = s;
  }
}

template <typename T>
__global__ void tensor_sums_kernel(Table<T> table, const double* partial, double* out) {
  const int t = blockIdx.x * (blockDim.x / 32) + threadIdx.x / 32;
  if (t >= table.count) return;  // whole warps leave together
  double s = 0;
  for (int64_t c = table.first_chunk[t] + threadIdx.x % 32; c < table.first_chunk[t + 1]; c += 32) s += partial[c];
  s = warp_sum(s);
  if (threadIdx.x % 32 == 0) out[t] = s;
}

template <typename T>
void sum_squares_typed(const Tensor& out, const std::vector<Tensor>& tensors) {
  double* o = static_cast<double*>(out.raw_data());
  for (size_t g0 = 0; g0 < tensors.size(); g0 += kGroup) {
    Table<T> table{};
    table.count = static_cast<int>(std::min<size_t>(kGroup, tensors.size() - g0));
    for (int t = 0; t < table.count; ++t) {
      const Tensor& x = tensors[g0 + static_cast<size_t>(t)];
      table.data[t] = static_cast<const T*>(x.raw_data());
      table.numel[t] = x.numel();
      table.first_chunk[t + 1] = table.first_chunk[t] + (x.numel() + kChunk - 1) / kChunk;
    }
    for (int t = table.count; t < kGroup; ++t) table.first_chunk[t + 1] = table.first_chunk[t];
    const int64_t chunks = table.first_chunk[table.count];
    Tensor partial = Tensor::empty(Shape{std::max<int64_t>(chunks, 1)}, DType::F64, out.device());
    double* p = static_cast<double*>(partial.raw_data());
    if (chunks > 0) {
      chunk_sums_kernel<T><<<static_cast<unsigned>(chunks), kThreads, 0, stream()>>>(table, p);
      check_launch("sum_squares");
    }
    tensor_sums_kernel<T><<<blocks_for(table.count, kThreads / 32), kThreads, 0, stream()>>>(table, p, o + g0);
    check_launch("sum_squares");
  }
}

}  // namespace

void sum_squares(const Tensor& out, const std::vector<Tensor>& tensors) {
  if (tensors.empty()) return;
  dispatch_float(tensors[0].dtype(), "sum_squares", [&](auto tag) {
    ProfileScope profile("sum_squares");
    sum_squares_typed<decltype(tag)>(out, tensors);
  });
}

}  // namespace mmgrad::cuda
