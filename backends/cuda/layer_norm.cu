// LayerNorm over the last dim: forward and dx one warp per row (two-pass statistics in f64,
// as on the CPU); dweight/dbias by columns, rows cut into chunks whose f64 partials are
// summed in order (deterministic, no atomics).
#include <algorithm>

#include "backends/cuda/kernels.h"
#include "backends/cuda/rows.cuh"

namespace mmgrad::cuda {
namespace {

template <typename T>
__global__ void layer_norm_kernel(const T* x, T* y, T* mean, T* rstd, const T* w, const T* b, int64_t rows,
                                  int64_t C, double eps) {
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const T* xr = x + r * C;
    T* yr = y + r * C;
    double s = 0;
    for (int64_t j = lane(); j < C; j += 32) s += xr[j];
    const double mu = warp_sum(s) / C;
    double v = 0;
    for (int64_t j = lane(); j < C; j += 32) v += (xr[j] - mu) * (xr[j] - mu);
    const double rs = 1.0 / sqrt(warp_sum(v) / C + eps);
    if (lane() == 0) {
      mean[r] = static_cast<T>(mu);
      rstd[r] = static_cast<T>(rs);
    }
    for (int64_t j = lane(); j < C; j += 32) {
      T xhat = static_cast<T>((xr[j] - mu) * rs);
      yr[j] = xhat * (w ? w[j] : T(1)) + (b ? b[j] : T(0));
    }
  }
}

template <typename T>
__global__ void layer_norm_dx_kernel(const T* x, const T* dy, const T* mean, const T* rstd, const T* w, T* dx,
                                     int64_t rows, int64_t C) {
  for (int64_t r = first_row(); r < rows; r += row_step()) {
    const T* xr = x + r * C;
    const T* dyr = dy + r * C;
    const double mu = mean[r], rs = rstd[r];
    double s1 = 0, s2 = 0;
    for (int64_t j = lane(); j < C; j += 32) {
      double xhat = (xr[j] - mu) * rs;
      double dxhat = dyr[j] * (w ? w[j] : T(1));
      s1 += dxhat;
      s2 += dxhat * xhat;
    }
    const double m1 = warp_sum(s1) / C, m2 = warp_sum(s2) / C;
    for (int64_t j = lane(); j < C; j += 32) {
      double xhat = (xr[j] - mu) * rs;
      double dxhat = dyr[j] * (w ? w[j] : T(1));
      dx[r * C + j] = static_cast<T>(rs * (dxhat - m1 - xhat * m2));
    }
  }
}

// Column sums of dy * xhat and dy over the rows of one chunk.
template <typename T>
__global__ void layer_norm_dwb_kernel(const T* x, const T* dy, const T* mean, const T* rstd, double* pw, double* pb,
                                      int64_t rows, int64_t C, int64_t chunk) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= C) return;
  const int64_t r0 = blockIdx.y * chunk, r1 = min(rows, r0 + chunk);
  double aw = 0, ab = 0;
  for (int64_t r = r0; r < r1; ++r) {
    double g = dy[r * C + j];
    aw += g * (x[r * C + j] - mean[r]) * rstd[r];
    ab += g;
  }
  pw[blockIdx.y * C + j] = aw;
  pb[blockIdx.y * C + j] = ab;
}

template <typename T>
__global__ void sum_chunks_kernel(const double* pw, const double* pb, T* dw, T* db, int64_t C, int64_t chunks) {
  const int64_t j = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x;
  if (j >= C) return;
  double aw = 0, ab = 0;
  for (int64_t c = 0; c < chunks; ++c) {
    aw += pw[c * C + j];
    ab += pb[c * C + j];
  }
  if (dw) dw[j] = static_cast<T>(aw);
  if (db) db[j] = static_cast<T>(ab);
}

template <typename T>
T* ptr_or_null(const Tensor& t) {
  return t.defined() ? static_cast<T*>(t.raw_data()) : nullptr;
}

}  // namespace

void layer_norm(const Tensor& out, const Tensor& mean, const Tensor& rstd, const Tensor& x, const Tensor& weight,
                const Tensor& bias, double eps) {
  const int64_t C = x.shape().back();
  const int64_t rows = C ? x.numel() / C : 0;
  if (rows == 0) return;
  dispatch_float(x.dtype(), "layer_norm", [&](auto tag) {
    using T = decltype(tag);
    ProfileScope profile("layer_norm");
    layer_norm_kernel<T><<<row_blocks(rows), kThreads, 0, stream()>>>(
        static_cast<const T*>(x.raw_data()), static_cast<T*>(out.raw_data()), static_cast<T*>(mean.raw_data()),
        static_cast<T*>(rstd.raw_data()), ptr_or_null<const T>(weight), ptr_or_null<const T>(bias), rows, C, eps);
    check_launch("layer_norm");
  });
}

void layer_norm_backward(const Tensor& grad_x, const Tensor& grad_weight, const Tensor& grad_bias,
                         const Tensor& grad_out, const Tensor& x, const Tensor& mean, const Tensor& rstd,
                         const Tensor& weight) {
  const int64_t C = x.shape().back();
  const int64_t rows = C ? x.numel() / C : 0;
  dispatch_float(x.dtype(), "layer_norm_backward", [&](auto tag) {
    using T = decltype(tag);
    const T* xp = static_cast<const T*>(x.raw_data());
    const T* dy = static_cast<const T*>(grad_out.raw_data());
    const T* mp = static_cast<const T*>(mean.raw_data());
    const T* rp = static_cast<const T*>(rstd.raw_data());
    if (grad_x.defined() && rows > 0) {
      ProfileScope profile("layer_norm_backward dx");
      layer_norm_dx_kernel<T><<<row_blocks(rows), kThreads, 0, stream()>>>(
          xp, dy, mp, rp, ptr_or_null<const T>(weight), static_cast<T*>(grad_x.raw_data()), rows, C);
      check_launch("layer_norm_backward");
    }
    if ((grad_weight.defined() || grad_bias.defined()) && C > 0) {
      // Enough chunks to give the GPU a few hundred blocks, each chunk at least 32 rows.
      const int64_t col_blocks = (C + kThreads - 1) / kThreads;
      int64_t chunks = std::clamp<int64_t>(std::min<int64_t>(rows / 32, 512 / col_blocks), 1, 65535);
      const int64_t chunk = std::max<int64_t>(1, (rows + chunks - 1) / chunks);
      chunks = std::max<int64_t>(1, (rows + chunk - 1) / chunk);
      Tensor partial = Tensor::empty({2, chunks, C}, DType::F64, x.device());
      double* pw = static_cast<double*>(partial.raw_data());
      double* pb = pw + chunks * C;
      ProfileScope profile("layer_norm_backward dw db");
      if (rows > 0) {
        layer_norm_dwb_kernel<T><<<dim3(col_blocks, chunks), kThreads, 0, stream()>>>(xp, dy, mp, rp, pw, pb, rows,
                                                                                      C, chunk);
        check_launch("layer_norm_backward");
      } else {
        fill(partial, 0);
      }
      sum_chunks_kernel<T><<<col_blocks, kThreads, 0, stream()>>>(pw, pb, ptr_or_null<T>(grad_weight),
                                                                  ptr_or_null<T>(grad_bias), C, chunks);
      check_launch("layer_norm_backward");
    }
  });
}

}  // namespace mmgrad::cuda
