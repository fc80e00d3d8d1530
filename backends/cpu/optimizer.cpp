// The fused AdamW update (one pass over parameter, gradient and both moments instead of a
// dozen elementwise ops, each with its own temporary).
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"

namespace mmgrad::cpu {

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  double lr, double beta1, double beta2, double eps, double decay, double bias_correction1,
                  double bias_correction2) {
  dispatch_float(param.dtype(), "adamw_update_", [&](auto tag) {
    using T = decltype(tag);
    T* p = param.data_ptr<T>();
    const T* g = grad.data_ptr<T>();
    T* m = exp_avg.data_ptr<T>();
    T* v = exp_avg_sq.data_ptr<T>();
    const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2), one_b1 = static_cast<T>(1 - beta1),
            one_b2 = static_cast<T>(1 - beta2), dec = static_cast<T>(decay), e = static_cast<T>(eps),
            sqrt_bc2 = static_cast<T>(std::sqrt(bias_correction2)), step = static_cast<T>(-lr / bias_correction1);
    parallel_for(0, param.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) {
        const T gi = g[i];
        const T mi = m[i] * b1 + gi * one_b1;
        const T vi = v[i] * b2 + gi * gi * one_b2;
        m[i] = mi;
        v[i] = vi;
        p[i] = p[i] * dec + mi / (std::sqrt(vi) / sqrt_bc2 + e) * step;
      }
    });
  });
}

}  // namespace mmgrad::cpu
