// Fused softmax + cross-entropy with ignore_index and label smoothing, one warp per row,
// with the CPU's formulas (backends/cpu/cross_entropy.cpp). A target out of range is
// recorded and raised at the next synchronisation (context.h); its row's loss is NaN.
#include "backends/cuda/kernels.h"
#include "backends/cuda/rows.cuh"

namespace mmgrad::cuda {
namespace {

template <typename T>
__global__ void cross_entropy_kernel(const T* x, const int64_t* target, T* loss, T* lse, int64_t N, int64_t C,
                                     int64_t ignore_index, double eps, int64_t* err) {
  for (int64_t r = first_row(); r < N; r += row_step()) {
    const T* xr = x + r * C;
    T mx = -INFINITY;
    for (int64_t j = lane(); j < C; j += 32) mx = fmax(mx, xr[j]);
    mx = warp_max(mx);
    double s = 0, sx = 0;
    for (int64_t j = lane(); j < C; j += 32) {
      s += exp(xr[j] - mx);
      sx += xr[j];
    }
    s = warp_sum(s);
    sx = warp_sum(sx);
    if (lane() != 0) continue;
    const double l = mx + log(s);
    lse[r] = static_cast<T>(l);
    const int64_t t = target[r];
    if (t == ignore_index) {
      loss[r] = 0;
    } else if (t < 0 || t >= C) {
      record_device_error(err, kTargetOutOfRange, kOpCrossEntropy, t, C);
      loss[r] = static_cast<T>(NAN);
    } else {
      const double mean_x = eps > 0 ? sx / C : 0.0;
      loss[r] = static_cast<T>(l - (1 - eps) * xr[t] - eps * mean_x);
    }
  }
}

template <typename T>
__global__ void cross_entropy_backward_kernel(const T* x, const T* g, const T* lse, const int64_t* target, T* gx,
                                              int64_t N, int64_t C, int64_t ignore_index, T eps) {
  for (int64_t r = first_row(); r < N; r += row_step()) {
    T* gr = gx + r * C;
    const int64_t t = target[r];
    if (t == ignore_index || t < 0 || t >= C) {
      for (int64_t j = lane(); j < C; j += 32) gr[j] = 0;
      continue;
    }
    const T* xr = x + r * C;
    const T gv = g[r], l = lse[r], smooth = eps / static_cast<T>(C);
    for (int64_t j = lane(); j < C; j += 32)
      gr[j] = gv * (exp(xr[j] - l) - smooth) - (j == t ? gv * (1 - eps) : T(0));
  }
}

}  // namespace

void cross_entropy(const Tensor& loss, const Tensor& lse, const Tensor& logits, const Tensor& target,
                   int64_t ignore_index, double label_smoothing) {
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  if (N == 0) return;
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    ProfileScope profile("cross_entropy");
    cross_entropy_kernel<T><<<row_blocks(N), kThreads, 0, stream()>>>(
        static_cast<const T*>(logits.raw_data()), static_cast<const int64_t*>(target.raw_data()),
        static_cast<T*>(loss.raw_data()), static_cast<T*>(lse.raw_data()), N, C, ignore_index, label_smoothing,
        device_error_record());
    check_launch("cross_entropy");
  });
}

void cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                            const Tensor& lse, const Tensor& target, int64_t ignore_index, double label_smoothing) {
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  if (N == 0) return;
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    ProfileScope profile("cross_entropy_backward");
    cross_entropy_backward_kernel<T><<<row_blocks(N), kThreads, 0, stream()>>>(
        static_cast<const T*>(logits.raw_data()), static_cast<const T*>(grad_loss.raw_data()),
        static_cast<const T*>(lse.raw_data()), static_cast<const int64_t*>(target.raw_data()),
        static_cast<T*>(grad_logits.raw_data()), N, C, ignore_index, static_cast<T>(label_smoothing));
    check_launch("cross_entropy_backward");
  });
}

}  // namespace mmgrad::cuda
