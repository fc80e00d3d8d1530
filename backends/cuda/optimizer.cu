// The fused AdamW update on the GPU (the same arithmetic as backends/cpu/optimizer.cpp): one
// kernel per parameter instead of a dozen, or, for the optimizer's step, one launch per
// group of up to kGroup parameters, whose pointers travel in a table as a kernel argument
// (a model has a hundred or more parameters, most of them small: per-parameter launches
// would make the step launch-bound).
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {

template <typename T>
struct AdamWScalars {
  T b1, b2, one_b1, one_b2, eps, sqrt_bc2, step;
};

template <typename T>
AdamWScalars<T> scalars(double lr, double beta1, double beta2, double eps, double bc1, double bc2) {
  return {static_cast<T>(beta1), static_cast<T>(beta2), static_cast<T>(1 - beta1), static_cast<T>(1 - beta2),
          static_cast<T>(eps),   static_cast<T>(std::sqrt(bc2)), static_cast<T>(-lr / bc1)};
}

template <typename T>
__device__ inline void adamw_element(T* p, const T* g, T* m, T* v, int64_t i, T decay, const AdamWScalars<T>& s) {
  const T gi = g[i];
  const T mi = m[i] * s.b1 + gi * s.one_b1;
  const T vi = v[i] * s.b2 + gi * gi * s.one_b2;
  m[i] = mi;
  v[i] = vi;
  p[i] = p[i] * decay + mi / (sqrt(vi) / s.sqrt_bc2 + s.eps) * s.step;
}

constexpr int kGroup = 40;                 // parameters per launch (the table is ~2.3 KB)
constexpr int64_t kChunk = kThreads * 16;  // elements per block

template <typename T>
struct Table {
  T* param[kGroup];
  const T* grad[kGroup];
  T* exp_avg[kGroup];
  T* exp_avg_sq[kGroup];
  int64_t numel[kGroup];
  T decay[kGroup];
  int64_t first_chunk[kGroup + 1];  // parameter t owns blocks [first_chunk[t], first_chunk[t + 1])
};

template <typename T>
__global__ void adamw_many_kernel(Table<T> table, AdamWScalars<T> s) {
  const int64_t chunk = blockIdx.x;
  int t = 0;
  while (chunk >= table.first_chunk[t + 1]) ++t;
  const int64_t start = (chunk - table.first_chunk[t]) * kChunk;
  const int64_t end = start + kChunk < table.numel[t] ? start + kChunk : table.numel[t];
  for (int64_t i = start + threadIdx.x; i < end; i += blockDim.x)
    adamw_element(table.param[t], table.grad[t], table.exp_avg[t], table.exp_avg_sq[t], i, table.decay[t], s);
}

// One parameter (a function, not a generic lambda: nvcc's device lambdas cannot live in one).
template <typename T>
void adamw_one(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, T decay,
               const AdamWScalars<T>& s) {
  T* p = static_cast<T*>(param.raw_data());
  const T* g = static_cast<const T*>(grad.raw_data());
  T* m = static_cast<T*>(exp_avg.raw_data());
  T* v = static_cast<T*>(exp_avg_sq.raw_data());
  launch_n(param.numel(), "adamw_update", [=] __device__(int64_t i) { adamw_element(p, g, m, v, i, decay, s); });
}

}  // namespace

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  double lr, double beta1, double beta2, double eps, double decay, double bias_correction1,
                  double bias_correction2) {
  dispatch_float(param.dtype(), "adamw_update_", [&](auto tag) {
    using T = decltype(tag);
    adamw_one<T>(param, grad, exp_avg, exp_avg_sq, static_cast<T>(decay),
                 scalars<T>(lr, beta1, beta2, eps, bias_correction1, bias_correction2));
  });
}

void adamw_update_many(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& decays, double lr, double beta1, double beta2, double eps,
                       double bias_correction1, double bias_correction2) {
  if (params.empty()) return;
  dispatch_float(params[0].dtype(), "adamw_update_", [&](auto tag) {
    using T = decltype(tag);
    const AdamWScalars<T> s = scalars<T>(lr, beta1, beta2, eps, bias_correction1, bias_correction2);
    ProfileScope profile("adamw_update_many");
    for (size_t g0 = 0; g0 < params.size(); g0 += kGroup) {
      Table<T> table{};
      const int count = static_cast<int>(std::min<size_t>(kGroup, params.size() - g0));
      for (int t = 0; t < count; ++t) {
        const size_t i = g0 + static_cast<size_t>(t);
        table.param[t] = static_cast<T*>(params[i].raw_data());
        table.grad[t] = static_cast<const T*>(grads[i].raw_data());
        table.exp_avg[t] = static_cast<T*>(exp_avgs[i].raw_data());
        table.exp_avg_sq[t] = static_cast<T*>(exp_avg_sqs[i].raw_data());
        table.numel[t] = params[i].numel();
        table.decay[t] = static_cast<T>(decays[i]);
        table.first_chunk[t + 1] = table.first_chunk[t] + (params[i].numel() + kChunk - 1) / kChunk;
      }
      for (int t = count; t < kGroup; ++t) table.first_chunk[t + 1] = table.first_chunk[t];
      const int64_t chunks = table.first_chunk[count];
      if (chunks == 0) continue;
      adamw_many_kernel<T><<<static_cast<unsigned>(chunks), kThreads, 0, stream()>>>(table, s);
      check_launch("adamw_update_many");
    }
  });
}

}  // namespace mmgrad::cuda
