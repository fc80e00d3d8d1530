// softmax and log_softmax over the last dim of a contiguous tensor, forward and backward,
// with the CPU's conventions (a fully masked row gives zeros from softmax, NaN from
// log_softmax).
#include "backends/cuda/kernels.h"
#include "backends/cuda/rows.cuh"

namespace mmgrad::cuda {
namespace {

template <typename T>
__global__ void softmax_kernel(const T* x, T* y, int64_t rows, int64_t C, bool log_out) {
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    T mx = -INFINITY;
    for (int64_t j = lane(); j < C; j += 32) mx = fmax(mx, xr[j]);
    mx = warp_max(mx);
    if (mx == T(-INFINITY)) mx = 0;
    T sum = 0;
    for (int64_t j = lane(); j < C; j += 32) sum += exp(xr[j] - mx);
    sum = warp_sum(sum);
    if (log_out) {
      const T lse = mx + log(sum);
      for (int64_t j = lane(); j < C; j += 32) yr[j] = xr[j] - lse;
    } else {
      const T inv = sum > 0 ? T(1) / sum : T(0);
      for (int64_t j = lane(); j < C; j += 32) yr[j] = exp(xr[j] - mx) * inv;
    }
  }
}

template <typename T>
__global__ void softmax_backward_kernel(const T* g, const T* y, T* gi, int64_t rows, int64_t C, bool log_out) {
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const T* gr = g + r * C;
    const T* yr = y + r * C;
    T* out = gi + r * C;
    T total = 0;
    for (int64_t j = lane(); j < C; j += 32) total += log_out ? gr[j] : gr[j] * yr[j];
    total = warp_sum(total);
    for (int64_t j = lane(); j < C; j += 32)
      out[j] = log_out ? gr[j] - exp(yr[j]) * total : yr[j] * (gr[j] - total);
  }
}

}  // namespace

void softmax(const Tensor& out, const Tensor& in, bool log) {
  const int64_t C = in.shape().back();
  const int64_t rows = C ? in.numel() / C : 0;
  if (rows == 0) return;
  dispatch_float(in.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    ProfileScope profile("softmax");
    softmax_kernel<T><<<row_blocks(rows), kThreads, 0, stream()>>>(static_cast<const T*>(in.raw_data()),
                                                                   static_cast<T*>(out.raw_data()), rows, C, log);
    check_launch("softmax");
  });
}

void softmax_backward(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) {
  const int64_t C = out.shape().back();
  const int64_t rows = C ? out.numel() / C : 0;
  if (rows == 0) return;
  dispatch_float(out.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    ProfileScope profile("softmax_backward");
    softmax_backward_kernel<T><<<row_blocks(rows), kThreads, 0, stream()>>>(
        static_cast<const T*>(grad_out.raw_data()), static_cast<const T*>(out.raw_data()),
        static_cast<T*>(grad_in.raw_data()), rows, C, log);
    check_launch("softmax_backward");
  });
}

}  // namespace mmgrad::cuda
