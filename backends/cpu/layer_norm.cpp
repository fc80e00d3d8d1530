// LayerNorm over the last dim, fused: one pass for statistics and output forward; backward
// computes dx per row and dweight/dbias per (column block, chunk of rows), the chunks' partial
// sums combined in order afterwards (no atomics; deterministic for any thread count).
// f32 rows whose width is a whole number of 64-byte vectors (the models' 96, 128, 512, 768)
// run in float vector lanes (vec_fold.h): 2.5x the double-lane rows on LayerNorm
// [8320, 128], +2.2-2.6% per shapes-small step in an in-model A/B. Other widths and f64 keep
// statistics and xhat in double. The per-row loops are compiled for AVX2 and AVX-512 too
// (MMGRAD_MULTIVERSION) with the optional weight and bias hoisted out of them. The parameter
// gradients accumulate in double either way.
#include <algorithm>
#include <cmath>
#include <type_traits>
#include <vector>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/vec_fold.h"
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

// An f32 row whose width is a whole number of 64-byte vectors (96, 128, 768 features): the
// same two-pass statistics in float vector lanes instead of double ones (twice the lanes per
// instruction, no conversions), the scale and shift in float. Rounding stays far inside what
// the f32 LayerNorm is held to (1e-5 against f64).
// Rows [lo, hi) in one multiversioned call (a call per row went through the resolver).
template <bool kWeight, bool kBias>
MMGRAD_MULTIVERSION void layer_norm_rows_vec(const float* xp, float* yp, int64_t C, const float* w, const float* b,
                                             double eps, float* mp, float* rp, int64_t lo, int64_t hi) {
  constexpr int64_t step = vec_lanes<float>();
  using V = Vec<float, kVecBytes>;
  for (int64_t r = lo; r < hi; ++r) {
    const float* xr = xp + r * C;
    float* yr = yp + r * C;
    const float mu = row_dot<float>(xr, nullptr, C) / static_cast<float>(C);
    V acc = {};
    for (int64_t j = 0; j < C; j += step) {
      const V d = load_vec<float, kVecBytes>(xr + j) - mu;
      acc += d * d;
    }
    const double var = static_cast<double>(fold_sum<float, kVecBytes>(acc)) / static_cast<double>(C);
    const float rs = static_cast<float>(1.0 / std::sqrt(var + eps));
    mp[r] = mu;
    rp[r] = rs;
    for (int64_t j = 0; j < C; j += step) {
      V y = (load_vec<float, kVecBytes>(xr + j) - mu) * rs;
      if constexpr (kWeight) y *= load_vec<float, kVecBytes>(w + j);
      if constexpr (kBias) y += load_vec<float, kVecBytes>(b + j);
      store_vec<float, kVecBytes>(yr + j, y);
    }
  }
}

// Rows [lo, hi) of the forward: the vector path for whole-vector f32 rows, else the double one.
template <typename T>
void layer_norm_rows(const T* xp, T* yp, int64_t C, const T* w, const T* b, double eps, T* mp, T* rp, int64_t lo,
                     int64_t hi) {
  if constexpr (std::is_same_v<T, float>) {
    if (whole_vectors<float>(C)) {
      if (w && b)
        layer_norm_rows_vec<true, true>(xp, yp, C, w, b, eps, mp, rp, lo, hi);
      else if (w)
        layer_norm_rows_vec<true, false>(xp, yp, C, w, b, eps, mp, rp, lo, hi);
      else if (b)
        layer_norm_rows_vec<false, true>(xp, yp, C, w, b, eps, mp, rp, lo, hi);
      else
        layer_norm_rows_vec<false, false>(xp, yp, C, w, b, eps, mp, rp, lo, hi);
      return;
    }
  }
  for (int64_t r = lo; r < hi; ++r) layer_norm_row(xp + r * C, yp + r * C, C, w, b, eps, mp + r, rp + r);
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

// The backward row for whole-vector f32 rows, in float lanes as the forward above.
template <bool kWeight>
MMGRAD_MULTIVERSION void layer_norm_backward_rows_vec(const float* xp, const float* dy, float* dx, int64_t C,
                                                      const float* w, const float* mp, const float* rp, int64_t lo,
                                                      int64_t hi) {
  constexpr int64_t step = vec_lanes<float>();
  using V = Vec<float, kVecBytes>;
  for (int64_t r = lo; r < hi; ++r) {
    const float* xr = xp + r * C;
    const float* dyr = dy + r * C;
    float* dxr = dx + r * C;
    const float mu = mp[r], rs = rp[r];
    V s1 = {}, s2 = {};
    for (int64_t j = 0; j < C; j += step) {
      V d = load_vec<float, kVecBytes>(dyr + j);  // dxhat = dy * w
      if constexpr (kWeight) d *= load_vec<float, kVecBytes>(w + j);
      s1 += d;
      s2 += d * ((load_vec<float, kVecBytes>(xr + j) - mu) * rs);
    }
    const float m1 = fold_sum<float, kVecBytes>(s1) / static_cast<float>(C);
    const float m2 = fold_sum<float, kVecBytes>(s2) / static_cast<float>(C);
    for (int64_t j = 0; j < C; j += step) {
      V d = load_vec<float, kVecBytes>(dyr + j);
      if constexpr (kWeight) d *= load_vec<float, kVecBytes>(w + j);
      const V xhat = (load_vec<float, kVecBytes>(xr + j) - mu) * rs;
      store_vec<float, kVecBytes>(dxr + j, rs * (d - m1 - xhat * m2));
    }
  }
}

// Rows [lo, hi) of dx: the vector path for whole-vector f32 rows, else the double one.
template <typename T>
void layer_norm_backward_rows(const T* xp, const T* dy, T* dx, int64_t C, const T* w, const T* mp, const T* rp,
                              int64_t lo, int64_t hi) {
  if constexpr (std::is_same_v<T, float>) {
    if (whole_vectors<float>(C)) {
      if (w)
        layer_norm_backward_rows_vec<true>(xp, dy, dx, C, w, mp, rp, lo, hi);
      else
        layer_norm_backward_rows_vec<false>(xp, dy, dx, C, w, mp, rp, lo, hi);
      return;
    }
  }
  for (int64_t r = lo; r < hi; ++r) {
    if (w)
      layer_norm_backward_row<T, true>(xp + r * C, dy + r * C, dx + r * C, C, w, mp[r], rp[r]);
    else
      layer_norm_backward_row<T, false>(xp + r * C, dy + r * C, dx + r * C, C, w, mp[r], rp[r]);
  }
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
      layer_norm_rows(xp, yp, C, w, b, eps, mp, rp, lo, hi);
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
        layer_norm_backward_rows(xp, dy, dx, C, w, mp, rp, lo, hi);
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
