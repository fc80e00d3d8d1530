// The fused AdamW update (one pass over parameter, gradient and both moments instead of a
// dozen elementwise ops, each with its own temporary), for one parameter or for all of them
// in one parallel_for (most parameters are small: biases, LayerNorm weights; one dispatch
// each would cost more than their arithmetic).
#include <cmath>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/tensor_chunks.h"
#include "backends/cpu/vec_math.h"

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

// n elements of one parameter. Multiversioned, with the four arrays declared unaliased, so
// that it vectorises (AVX-512: sixteen square roots and divisions at a time); the baseline
// build ran it as scalar SSE, 2% of the shapes-small step. As in the other multiversioned
// loops, the AVX2 and AVX-512 versions may fuse a multiply and an add into one FMA, so the
// last bit can differ between a CPU with FMA and one without.
template <typename T>
MMGRAD_MULTIVERSION void adamw_elements(T* __restrict p, const T* __restrict g, T* __restrict m, T* __restrict v,
                                        int64_t n, T decay, T b1, T b2, T one_b1, T one_b2, T eps, T sqrt_bc2,
                                        T step) {
  for (int64_t i = 0; i < n; ++i) {
    const T gi = g[i];
    const T mi = m[i] * b1 + gi * one_b1;
    const T vi = v[i] * b2 + gi * gi * one_b2;
    m[i] = mi;
    v[i] = vi;
    p[i] = p[i] * decay + mi / (std::sqrt(vi) / sqrt_bc2 + eps) * step;
  }
}

// Elements [lo, hi) of one parameter.
template <typename T>
void adamw_run(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq, T decay,
               const AdamWScalars<T>& s, int64_t lo, int64_t hi) {
  adamw_elements<T>(param.data_ptr<T>() + lo, grad.data_ptr<T>() + lo, exp_avg.data_ptr<T>() + lo,
                    exp_avg_sq.data_ptr<T>() + lo, hi - lo, decay, s.b1, s.b2, s.one_b1, s.one_b2, s.eps, s.sqrt_bc2,
                    s.step);
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
