// The fused AdamW update on the GPU: one kernel per parameter instead of a dozen (the same
// arithmetic as backends/cpu/optimizer.cpp).
#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {

template <typename T>
void adamw_typed(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, double lr,
                 double beta1, double beta2, double eps, double decay, double bias_correction1,
                 double bias_correction2) {
  T* p = static_cast<T*>(param.raw_data());
  const T* g = static_cast<const T*>(grad.raw_data());
  T* m = static_cast<T*>(exp_avg.raw_data());
  T* v = static_cast<T*>(exp_avg_sq.raw_data());
  const T b1 = static_cast<T>(beta1), b2 = static_cast<T>(beta2), one_b1 = static_cast<T>(1 - beta1),
          one_b2 = static_cast<T>(1 - beta2), dec = static_cast<T>(decay), e = static_cast<T>(eps),
          sqrt_bc2 = static_cast<T>(std::sqrt(bias_correction2)), step = static_cast<T>(-lr / bias_correction1);
  launch_n(param.numel(), "adamw_update", [=] __device__(int64_t i) {
    const T gi = g[i];
    const T mi = m[i] * b1 + gi * one_b1;
    const T vi = v[i] * b2 + gi * gi * one_b2;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * dec + mi / (sqrt(vi) / sqrt_bc2 + e) * step;
  });
}

}  // namespace

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  double lr, double beta1, double beta2, double eps, double decay, double bias_correction1,
                  double bias_correction2) {
  dispatch_float(param.dtype(), "adamw_update_", [&](auto tag) {
    adamw_typed<decltype(tag)>(param, grad, exp_avg, exp_avg_sq, lr, beta1, beta2, eps, decay, bias_correction1,
                               bias_correction2);
  });
}

}  // namespace mmgrad::cuda
