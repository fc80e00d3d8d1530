// LayerNorm over the last dim, fused: one pass for statistics and output forward; backward
// computes dx per row and dweight/dbias per (column block, chunk of rows), the chunks' partial
// sums combined in order afterwards (no atomics; deterministic for any thread count).
// Statistics and xhat are computed in double as before; the per-row loops are compiled for
// AVX2 and AVX-512 too (MMGRAD_MULTIVERSION) with the optional weight and bias hoisted out of
// them, and the sums run in eight lanes so that they vectorise.
#include <algorithm>
#include <cmath>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/vec_math.h"

namespace mmgrad::cpu {
namespace {

template <typename T>
MMGRAD_MULTIVERSION void layer_norm_row(const T* xr, T* yr, int64_t C, const T* w, const T* b,
                                        double eps, T* mean_out, T* rstd_out) {
  // Two-pass mean and variance: exact enough in f32 where E[x^2]-E[x]^2 is not.
  const double mu = sum_lanes<double>(xr, C) / static_cast<double>(C);
  const double v = sum_lanes_of<double>(C, [&](int64_t j) {
    const double d = static_cast<double>(xr[j]) - mu;
    return d * d;
  });
  const double rs = 1.0 / std::sqrt(v / static_cast<double>(C) + eps);
  *mean_out = static_cast<T>(mu);
  *rstd_out = static_cast<T>(rs);
  auto xhat = [&](int64_t j) { return static_cast<T>((static_cast<double>(xr[j]) - mu) * rs); };
  if (w && b)
    for (int64_t j = 0; j < C; ++j) yr[j] = xhat(j) * w[j] + b[j];
  else if (w)
    for (int64_t j = 0; j < C; ++j) yr[j] = xhat(j) * w[j];
  else if (b)
    for (int64_t j = 0; j < C; ++j) yr[j] = xhat(j) + b[j];
  else
    for (int64_t j = 0; j < C; ++j) yr[j] = xhat(j);
}

// dx = rstd * (dxhat - mean(dxhat) - xhat * mean(dxhat * xhat)), dxhat = dy * w.
template <typename T, bool kWeight>
MMGRAD_MULTIVERSION void layer_norm_backward_row(const T* xr, const T* dyr, T* dxr, int64_t C,
                                                 const T* w, double mu, double rs) {
  auto xhat = [&](int64_t j) { return (static_cast<double>(xr[j]) - mu) * rs; };
  auto dxhat = [&](int64_t j) {
    return static_cast<double>(dyr[j]) * (kWeight ? static_cast<double>(w[j]) : 1.0);
  };
  const double m1 = sum_lanes_of<double>(C, dxhat) / static_cast<double>(C);
  const double m2 =
      sum_lanes_of<double>(C, [&](int64_t j) { return dxhat(j) * xhat(j); }) / static_cast<double>(C);
  for (int64_t j = 0; j < C; ++j) dxr[j] = static_cast<T>(rs * (dxhat(j) - m1 - xhat(j) * m2));
}

// Adds rows [r0, r1) of columns [c0, c0 + width) into acc_w (dy * xhat) and acc_b (dy).
template <typename T>
MMGRAD_MULTIVERSION void layer_norm_param_grads(const T* xp, const T* dy, const T* mp,
                                                const T* rp, int64_t C, int64_t r0, int64_t r1,
                                                int64_t c0, int64_t width, double* acc_w,
                                                double* acc_b) {
  for (int64_t r = r0; r < r1; ++r) {
    const T* xr = xp + r * C + c0;
    const T* dyr = dy + r * C + c0;
    const double m = mp[r], rs = rp[r];
    for (int64_t j = 0; j < width; ++j) {
      const double g = dyr[j];
      acc_w[j] += g * ((static_cast<double>(xr[j]) - m) * rs);
      acc_b[j] += g;
    }
  }
}

}  // namespace

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
      for (int64_t r = lo; r < hi; ++r) layer_norm_row(xp + r * C, yp + r * C, C, w, b, eps, mp + r, rp + r);
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
          if (w)
            layer_norm_backward_row<T, true>(xp + r * C, dy + r * C, dx + r * C, C, w, mp[r], rp[r]);
          else
            layer_norm_backward_row<T, false>(xp + r * C, dy + r * C, dx + r * C, C, w, mp[r], rp[r]);
        }
      });
    }
    if (grad_weight.defined() || grad_bias.defined()) {
      T* dw = grad_weight.defined() ? grad_weight.data_ptr<T>() : nullptr;
      T* db = grad_bias.defined() ? grad_bias.data_ptr<T>() : nullptr;
      // Tasks: column blocks x fixed chunks of rows (a width-96 LayerNorm has one block, so
      // the rows are what the threads share); partial sums per task, combined in chunk order.
      constexpr int64_t kBlock = 128;
      constexpr int64_t kRows = 512;
      const int64_t blocks = (C + kBlock - 1) / kBlock;
      const int64_t chunks = std::max<int64_t>(1, (rows + kRows - 1) / kRows);
      std::vector<double> partial(static_cast<size_t>(blocks * chunks * 2 * kBlock));
      parallel_for(0, blocks * chunks, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t task = lo; task < hi; ++task) {
          const int64_t blk = task / chunks, chunk = task % chunks;
          const int64_t c0 = blk * kBlock, width = std::min(kBlock, C - c0);
          double acc_w[kBlock] = {}, acc_b[kBlock] = {};
          layer_norm_param_grads(xp, dy, mp, rp, C, chunk * kRows, std::min(rows, (chunk + 1) * kRows),
                                 c0, width, acc_w, acc_b);
          double* out = partial.data() + task * 2 * kBlock;
          std::copy(acc_w, acc_w + width, out);
          std::copy(acc_b, acc_b + width, out + kBlock);
        }
      });
      for (int64_t blk = 0; blk < blocks; ++blk) {
        const int64_t c0 = blk * kBlock, width = std::min(kBlock, C - c0);
        for (int64_t j = 0; j < width; ++j) {
          double sw = 0, sb = 0;
          for (int64_t chunk = 0; chunk < chunks; ++chunk) {
            const double* in = partial.data() + (blk * chunks + chunk) * 2 * kBlock;
            sw += in[j];
            sb += in[kBlock + j];
          }
          if (dw) dw[c0 + j] = static_cast<T>(sw);
          if (db) db[c0 + j] = static_cast<T>(sb);
        }
      }
    }
  });
}

}  // namespace mmgrad::cpu
