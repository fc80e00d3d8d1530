// LayerNorm over the last dim, fused: one pass for statistics and output forward; backward
// computes dx per row and dweight/dbias per column block (no atomics, deterministic).
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"

namespace mmgrad::cpu {

void layer_norm(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x,
                const Tensor& weight, const Tensor& bias, double eps) {
  const int64_t C = x.shape().back();
  const int64_t rows = C ? x.numel() / C : 0;
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    T* yp = out.data_ptr<T>();
    T* mp = mean.data_ptr<T>();
    T* rp = rstd.data_ptr<T>();
    const T* w = weight.defined() ? weight.data_ptr<T>() : nullptr;
    const T* b = bias.defined() ? bias.data_ptr<T>() : nullptr;
    parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
      for (int64_t r = lo; r < hi; ++r) {
        const T* xr = xp + r * C;
        T* yr = yp + r * C;
        // Two-pass mean and variance: exact enough in f32 where E[x^2]-E[x]^2 is not.
        double s = 0;
        for (int64_t j = 0; j < C; ++j) s += xr[j];
        double mu = s / C;
        double v = 0;
        for (int64_t j = 0; j < C; ++j) v += (xr[j] - mu) * (xr[j] - mu);
        double rs = 1.0 / std::sqrt(v / C + eps);
        mp[r] = static_cast<T>(mu);
        rp[r] = static_cast<T>(rs);
        for (int64_t j = 0; j < C; ++j) {
          T xhat = static_cast<T>((xr[j] - mu) * rs);
          yr[j] = xhat * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
        }
      }
    });
  });
}

void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_out, const Tensor& x, const Tensor& mean,
                         const Tensor& rstd, const Tensor& weight) {
  const int64_t C = x.shape().back();
  const int64_t rows = C ? x.numel() / C : 0;
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = x.data_ptr<T>();
    const T* dy = grad_out.data_ptr<T>();
    const T* mp = mean.data_ptr<T>();
    const T* rp = rstd.data_ptr<T>();
    const T* w = weight.defined() ? weight.data_ptr<T>() : nullptr;
    if (grad_x.defined()) {
      T* dx = grad_x.data_ptr<T>();
      parallel_for(0, rows, std::max<int64_t>(1, 4096 / std::max<int64_t>(C, 1)), [&](int64_t lo, int64_t hi) {
        for (int64_t r = lo; r < hi; ++r) {
          const T* xr = xp + r * C;
          const T* dyr = dy + r * C;
          // dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w
          double sum_dxhat = 0, sum_dxhat_xhat = 0;
          for (int64_t j = 0; j < C; ++j) {
            double xhat = (xr[j] - mp[r]) * rp[r];
            double dxhat = dyr[j] * (w ? w[j] : T(1));
            sum_dxhat += dxhat;
            sum_dxhat_xhat += dxhat * xhat;
          }
          double m1 = sum_dxhat / C, m2 = sum_dxhat_xhat / C;
          for (int64_t j = 0; j < C; ++j) {
            double xhat = (xr[j] - mp[r]) * rp[r];
            double dxhat = dyr[j] * (w ? w[j] : T(1));
            dx[r * C + j] = static_cast<T>(rp[r] * (dxhat - m1 - xhat * m2));
          }
        }
      });
    }
    if (grad_weight.defined() || grad_bias.defined()) {
      T* dw = grad_weight.defined() ? grad_weight.data_ptr<T>() : nullptr;
      T* db = grad_bias.defined() ? grad_bias.data_ptr<T>() : nullptr;
      constexpr int64_t kBlock = 64;
      int64_t blocks = (C + kBlock - 1) / kBlock;
      parallel_for(0, blocks, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t blk = lo; blk < hi; ++blk) {
          int64_t c0 = blk * kBlock, c1 = std::min(C, c0 + kBlock);
          double acc_w[kBlock] = {}, acc_b[kBlock] = {};
          for (int64_t r = 0; r < rows; ++r)
            for (int64_t j = c0; j < c1; ++j) {
              double g = dy[r * C + j];
              acc_w[j - c0] += g * (xp[r * C + j] - mp[r]) * rp[r];
              acc_b[j - c0] += g;
            }
          for (int64_t j = c0; j < c1; ++j) {
            if (dw) dw[j] = static_cast<T>(acc_w[j - c0]);
            if (db) db[j] = static_cast<T>(acc_b[j - c0]);
          }
        }
      });
    }
  });
}

}  // namespace mmgrad::cpu
