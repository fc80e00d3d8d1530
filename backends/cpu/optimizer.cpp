// The fused AdamW update (one pass over parameter, gradient and both moments instead of a
// dozen elementwise ops, each with its own temporary), for one parameter or for all of them
// in one parallel_for (most parameters are small: biases, LayerNorm weights; one dispatch
// each would cost more than their arithmetic).
#include <cmath>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/tensor_chunks.h"

namespace mmgrad::cpu {
namespace {

// The step's scalars, shared by every parameter, in the parameter's dtype.
template <typename T>
struct AdamWScalars {
  T b1, b2, one_b1, one_b2, eps, sqrt_bc2, step;
  AdamWScalars(double lr, double beta1, double beta2, double e, double bc1, double bc2)
      : b1(static_cast<T>(beta1)), b2(static_cast<T>(beta2)), one_b1(static_cast<T>(1 - beta1)),
        one_b2(static_cast<T>(1 - beta2)), eps(static_cast<T>(e)), sqrt_bc2(static_cast<T>(std::sqrt(bc2))),
        step(static_cast<T>(-lr / bc1)) {}
};

// Elements [lo, hi) of one parameter.
template <typename T>
void adamw_run(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, T decay,
               const AdamWScalars<T>& s, int64_t lo, int64_t hi) {
  T* p = param.data_ptr<T>();
  const T* g = grad.data_ptr<T>();
  T* m = exp_avg.data_ptr<T>();
  T* v = exp_avg_sq.data_ptr<T>();
  for (int64_t i = lo; i < hi; ++i) {
    const T gi = g[i];
    const T mi = m[i] * s.b1 + gi * s.one_b1;
    const T vi = v[i] * s.b2 + gi * gi * s.one_b2;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay + mi / (std::sqrt(vi) / s.sqrt_bc2 + s.eps) * s.step;
  }
}

constexpr int64_t kChunk = int64_t{1} << 14;

}  // namespace

void adamw_update(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                  double lr, double beta1, double beta2, double eps, double decay, double bias_correction1,
                  double bias_correction2) {
  dispatch_float(param.dtype(), "adamw_update_", [&](auto tag) {
    using T = decltype(tag);
    const AdamWScalars<T> s(lr, beta1, beta2, eps, bias_correction1, bias_correction2);
    parallel_for(0, param.numel(), kChunk, [&](int64_t lo, int64_t hi) {
      adamw_run<T>(param, grad, exp_avg, exp_avg_sq, static_cast<T>(decay), s, lo, hi);
    });
  });
}

void adamw_update_many(const std::vector<Tensor>& params, const std::vector<Tensor>& grads,
                       const std::vector<Tensor>& exp_avgs, const std::vector<Tensor>& exp_avg_sqs,
                       const std::vector<double>& decays, double lr, double beta1, double beta2, double eps,
                       double bias_correction1, double bias_correction2) {
  if (params.empty()) return;
  dispatch_float(params[0].dtype(), "adamw_update_", [&](auto tag) {
    using T = decltype(tag);
    const AdamWScalars<T> s(lr, beta1, beta2, eps, bias_correction1, bias_correction2);
    auto numel = [&](size_t i) { return params[i].numel(); };
    for_each_chunk(first_chunks(numel, params.size(), kChunk), numel, kChunk,
                   [&](size_t i, int64_t, int64_t begin, int64_t end) {
                     adamw_run<T>(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], static_cast<T>(decays[i]), s,
                                  begin, end);
                   });
  });
}

}  // namespace mmgrad::cpu
