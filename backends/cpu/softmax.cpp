// softmax and log_softmax over the last dim, forward and backward. Rows run in parallel;
// each row subtracts its max first so exp never overflows. The per-row loops are separate
// passes (max, exp, sum, scale) so each vectorises, in every ISA clone.
#include <algorithm>
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/vec_math.h"

namespace mmgrad::cpu {
namespace {

template <typename T>
MMGRAD_MULTIVERSION void softmax_rows(const T* x, T* y, int64_t lo, int64_t hi, int64_t C, bool log) {
  for (int64_t r = lo; r < hi; ++r) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    T mx = max_lanes(xr, C);
    // A row of all -inf (fully masked) gives zeros from softmax (a masked attention row
    // attends to nothing) instead of NaN; log_softmax gives NaN there, as in PyTorch.
    if (mx == -std::numeric_limits<T>::infinity()) mx = 0;
    for (int64_t j = 0; j < C; ++j) yr[j] = exp_fast(xr[j] - mx);
    const T sum = sum_lanes<T>(yr, C);
    if (log) {
      const T lse = mx + std::log(sum);
      for (int64_t j = 0; j < C; ++j) yr[j] = xr[j] - lse;
    } else {
      const T inv = sum > 0 ? T(1) / sum : T(0);
      for (int64_t j = 0; j < C; ++j) yr[j] *= inv;
    }
  }
}

template <typename T>
MMGRAD_MULTIVERSION void softmax_backward_rows(const T* g, const T* y, T* gi, int64_t lo, int64_t hi,
                                               int64_t C, bool log) {
  for (int64_t r = lo; r < hi; ++r) {
    const T* gr = g + r * C;
    const T* yr = y + r * C;
    T* gir = gi + r * C;
    if (log) {
      // d/dx log_softmax: g - softmax * sum(g)
      const T total = sum_lanes<T>(gr, C);
      for (int64_t j = 0; j < C; ++j) gir[j] = gr[j] - exp_fast(yr[j]) * total;
    } else {
      // d/dx softmax: y * (g - sum(g * y)); gir holds g * y first, for a vectorised sum.
      for (int64_t j = 0; j < C; ++j) gir[j] = gr[j] * yr[j];
      const T dot = sum_lanes<T>(gir, C);
      for (int64_t j = 0; j < C; ++j) gir[j] = yr[j] * (gr[j] - dot);
    }
  }
}

int64_t rows_per_task(int64_t C) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)); }

}  // namespace

void softmax(const Tensor& out, const Tensor& in, bool log) {
  const int64_t C = in.shape().back();
  const int64_t rows = C ? in.numel() / C : 0;
  dispatch_float(in.dtype(), log ? "log_softmax" : "softmax", [&](auto tag) {
    using T = decltype(tag);
    const T* x = in.data_ptr<T>();
    T* y = out.data_ptr<T>();
    parallel_for(0, rows, rows_per_task(C), [&](int64_t lo, int64_t hi) { softmax_rows(x, y, lo, hi, C, log); });
  });
}

void softmax_backward(const Tensor& grad_in, const Tensor& grad_out, const Tensor& out, bool log) {
  const int64_t C = out.shape().back();
  const int64_t rows = C ? out.numel() / C : 0;
  dispatch_float(out.dtype(), "softmax_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* g = grad_out.data_ptr<T>();
    const T* y = out.data_ptr<T>();
    T* gi = grad_in.data_ptr<T>();
    parallel_for(0, rows, rows_per_task(C), [&](int64_t lo, int64_t hi) {
      softmax_backward_rows(g, y, gi, lo, hi, C, log);
    });
  });
}

}  // namespace mmgrad::cpu
