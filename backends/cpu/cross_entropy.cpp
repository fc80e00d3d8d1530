// Fused softmax + cross-entropy with ignore_index and label smoothing. The smoothed target
// is q = (1 - eps) * onehot + eps / C, so loss = lse - sum_j q_j x_j and
// dloss/dx_j = softmax_j - q_j.
#include <algorithm>
#include <cmath>
#include <limits>

#include <fmt/format.h>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"

namespace mmgrad::cpu {
namespace {
void check_target(int64_t t, int64_t C, int64_t row, int64_t ignore_index) {
  if (t != ignore_index && (t < 0 || t >= C))
    fail("cross_entropy", fmt::format("target {} at row {} is out of range for {} classes (and "
                                      "is not ignore_index {})",
                                      t, row, C, ignore_index));
}
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
    parallel_for(0, N, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = x + r * C;
        check_target(tg[r], C, r, ignore_index);
        T mx = -std::numeric_limits<T>::infinity();
        double sum_x = 0;
        for (int64_t j = 0; j < C; ++j) {
          mx = std::max(mx, xr[j]);
          sum_x += xr[j];
        }
        double s = 0;
        for (int64_t j = 0; j < C; ++j) s += std::exp(static_cast<double>(xr[j] - mx));
        double l = mx + std::log(s);
        lsep[r] = static_cast<T>(l);
        if (tg[r] == ignore_index) {
          lp[r] = 0;
          continue;
        }
        double eps = label_smoothing;
        lp[r] = static_cast<T>(l - (1 - eps) * xr[tg[r]] - eps * sum_x / C);
      }
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
    parallel_for(0, N, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        T* gr = gx + r * C;
        if (tg[r] == ignore_index) {
          std::fill(gr, gr + C, T(0));
          continue;
        }
        const T* xr = x + r * C;
        for (int64_t j = 0; j < C; ++j) gr[j] = g[r] * (std::exp(xr[j] - lsep[r]) - eps / C);
        gr[tg[r]] -= g[r] * (1 - eps);
      }
    });
  });
}

}  // namespace mmgrad::cpu
