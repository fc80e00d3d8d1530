// Fused softmax + cross-entropy with ignore_index and label smoothing. The smoothed target
// is q = (1 - eps) * onehot + eps / C, so loss = lse - sum_j q_j x_j and
// dloss/dx_j = softmax_j - q_j.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/vec_math.h"

namespace mmgrad::cpu {
namespace {
void check_target(int64_t t, int64_t C, int64_t row, int64_t ignore_index) {
  if (t != ignore_index && (t < 0 || t >= C))
    fail("cross_entropy", fmt::format("target {} at row {} is out of range for {} classes (and "
                                      "is not ignore_index {})",
                                      t, row, C, ignore_index));
}

// Loss and log-sum-exp of rows [lo, hi). Each pass over a row vectorises.
template <typename T>
MMGRAD_MULTIVERSION void cross_entropy_rows(const T* x, const int64_t* tg, T* lp, T* lsep, int64_t lo,
                                            int64_t hi, int64_t C, int64_t ignore_index,
                                            double label_smoothing) {
  for (int64_t r = lo; r < hi; ++r) {
    const T* xr = x + r * C;
    check_target(tg[r], C, r, ignore_index);
    const T mx = max_lanes(xr, C);
    T lane[8] = {};
    int64_t j = 0;
    for (; j + 8 <= C; j += 8)
      for (int k = 0; k < 8; ++k) lane[k] += exp_fast(xr[j + k] - mx);
    double s = 0;
    for (int k = 0; k < 8; ++k) s += lane[k];
    for (; j < C; ++j) s += exp_fast(xr[j] - mx);
    const double l = mx + std::log(s);
    lsep[r] = static_cast<T>(l);
    if (tg[r] == ignore_index) {
      lp[r] = 0;
      continue;
    }
    const double eps = label_smoothing;
    const double mean_x = eps > 0 ? sum_lanes<double>(xr, C) / C : 0.0;
    lp[r] = static_cast<T>(l - (1 - eps) * xr[tg[r]] - eps * mean_x);
  }
}

template <typename T>
MMGRAD_MULTIVERSION void cross_entropy_backward_rows(const T* x, const T* g, const T* lsep, const int64_t* tg,
                                                     T* gx, int64_t lo, int64_t hi, int64_t C,
                                                     int64_t ignore_index, T eps) {
  for (int64_t r = lo; r < hi; ++r) {
    T* gr = gx + r * C;
    if (tg[r] == ignore_index) {
      std::fill(gr, gr + C, T(0));
      continue;
    }
    const T* xr = x + r * C;
    const T gv = g[r], l = lsep[r], smooth = eps / static_cast<T>(C);
    for (int64_t j = 0; j < C; ++j) gr[j] = gv * (exp_fast(xr[j] - l) - smooth);
    gr[tg[r]] -= gv * (1 - eps);
  }
}

int64_t rows_per_task(int64_t C) { return std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)); }

}  // namespace

void cross_entropy(const Tensor& loss, const Tensor& lse, const Tensor& logits, const Tensor& target,
                   int64_t ignore_index, double label_smoothing) {
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  dispatch_float(logits.dtype(), "cross_entropy", [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data_ptr<T>();
    const int64_t* tg = target.data_ptr<int64_t>();
    T* lp = loss.data_ptr<T>();
    T* lsep = lse.data_ptr<T>();
    parallel_for(0, N, rows_per_task(C), [&](int64_t lo, int64_t hi) {
      cross_entropy_rows(x, tg, lp, lsep, lo, hi, C, ignore_index, label_smoothing);
    });
  });
}

void cross_entropy_backward(const Tensor& grad_logits, const Tensor& grad_loss, const Tensor& logits,
                            const Tensor& lse, const Tensor& target, int64_t ignore_index,
                            double label_smoothing) {
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  dispatch_float(logits.dtype(), "cross_entropy_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* x = logits.data_ptr<T>();
    const T* g = grad_loss.data_ptr<T>();
    const T* lsep = lse.data_ptr<T>();
    const int64_t* tg = target.data_ptr<int64_t>();
    T* gx = grad_logits.data_ptr<T>();
    const T eps = static_cast<T>(label_smoothing);
    parallel_for(0, N, rows_per_task(C), [&](int64_t lo, int64_t hi) {
      cross_entropy_backward_rows(x, g, lsep, tg, gx, lo, hi, C, ignore_index, eps);
    });
  });
}

}  // namespace mmgrad::cpu
