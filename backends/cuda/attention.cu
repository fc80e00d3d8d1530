// Fused scaled-dot-product attention on CUDA, forward and backward, flash-attention style:
// the [T, S] scores are never written to memory. Forward keeps one log-sum-exp per query row;
// backward recomputes each probability from it.
//
// Why: composed of ops, one attention layer is about eight launches (QK^T, scale, mask,
// softmax, PV and their backward) over [..., T, S] buffers. The models here have short
// sequences (T, S <= 77) and small heads (D = 64 or less), so the work per head is tiny and
// launches and memory traffic dominate; one kernel per direction removes both.
//
// Layout of the work (the same semantics as backends/cpu/attention.cpp):
// - forward: one warp per query row. Keys are taken 32 at a time, one per lane: each lane
//   forms its key's score, the warp updates the running max and sum (online softmax) and
//   rescales the output accumulator, then the 32 probabilities are broadcast one by one and
//   every lane adds p_j v_j for the output columns it owns (lane, lane + 32, ...).
// - backward, pass 1 (one warp per query row): delta_i = sum_j p_ij dp_ij with
//   dp_ij = g_i . v_j, then dq_i = scale sum_j p_ij (dp_ij - delta_i) k_j; delta is kept.
// - backward, pass 2 (one warp per key row): dk_j = scale sum_i p_ij (dp_ij - delta_i) q_i
//   and dv_j = sum_i p_ij g_i over the queries that see key j. Every output row is written
//   by one warp: no atomics, deterministic.
// The warp's row operands and its accumulators live in shared memory (each lane touches only
// its own columns of the accumulators), so any head width fits while shared memory does.
#include <algorithm>
#include <array>
#include <string>

#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {

// The operands walked over the batch dims (the dims before the last two).
enum Operand { kQ, kK, kV, kMask, kG, kOut, kDq, kDk, kDv, kOperands };

template <typename T>
struct Args {
  const T *q, *k, *v, *mask, *g;
  T *out, *dq, *dk, *dv;
  T* lse;    // [slices, T] contiguous
  T* delta;  // backward's per-row sum_j p_ij dp_ij, [slices, T]
  int64_t row[kOperands];  // each operand's row stride (the [T, S] mask's too)
  int64_t mask_col;        // the mask's column stride (0 where broadcast)
  int64_t slices, T_, S, D, Dv;
  T scale;
  bool causal;
  Strided<kOperands> batch;  // element offset of each operand's slice n
};

constexpr unsigned kFull = 0xffffffffu;

__device__ inline int lane_id() { return threadIdx.x % 32; }
__device__ inline int64_t warp_global() { return blockIdx.x * static_cast<int64_t>(blockDim.x / 32) + threadIdx.x / 32; }
__device__ inline int64_t warp_count() { return static_cast<int64_t>(gridDim.x) * (blockDim.x / 32); }

template <typename T>
__device__ inline T dot(const T* a, const T* b, int64_t n) {
  T s = 0;
  for (int64_t d = 0; d < n; ++d) s += a[d] * b[d];
  return s;
}

// Copies n elements into this warp's shared row, lanes striding.
template <typename T>
__device__ inline void load_row(T* dst, const T* src, int64_t n) {
  for (int64_t d = lane_id(); d < n; d += 32) dst[d] = src[d];
}
template <typename T>
__device__ inline void zero_row(T* dst, int64_t n) {
  for (int64_t d = lane_id(); d < n; d += 32) dst[d] = 0;
}
template <typename T>
__device__ inline void store_row(T* dst, const T* src, int64_t n, T factor) {
  for (int64_t d = lane_id(); d < n; d += 32) dst[d] = src[d] * factor;
}
// acc[d] += p * row[d] over this lane's columns.
template <typename T>
__device__ inline void add_scaled_row(T* acc, const T* row, int64_t n, T p) {
  for (int64_t d = lane_id(); d < n; d += 32) acc[d] += p * row[d];
}

// How many keys query row i sees: all S, or 0..i under the causal mask.
template <typename T>
__device__ inline int64_t keys_seen(const Args<T>& a, int64_t i) {
  return a.causal ? (i + 1 < a.S ? i + 1 : a.S) : a.S;
}

// The masked, scaled score of query row q (in shared memory) against key j.
template <typename T>
__device__ inline T score(const Args<T>& a, const T* q, const T* k, const T* mask_row, int64_t j) {
  T s = a.scale * dot(q, k + j * a.row[kK], a.D);
  if (mask_row) s += mask_row[j * a.mask_col];
  return s;
}

// This warp's part of the block's shared memory, `per_warp` elements.
template <typename T>
__device__ inline T* warp_shared(int64_t per_warp) {
  extern __shared__ __align__(16) unsigned char shared_bytes[];
  return reinterpret_cast<T*>(shared_bytes) + (threadIdx.x / 32) * per_warp;
}

// Query row r (row i of slice n): the slice's operands and the row's mask.
template <typename T>
struct QueryRow {
  int64_t n, i;
  int64_t off[kOperands];
  const T *k, *v, *mask_row;

  __device__ QueryRow(const Args<T>& a, int64_t r) : n(r / a.T_), i(r % a.T_) {
    a.batch.offsets(n, off);
    k = a.k + off[kK];
    v = a.v + off[kV];
    mask_row = a.mask ? a.mask + off[kMask] + i * a.row[kMask] : nullptr;
  }
};

template <typename T>
__global__ void attention_forward_kernel(Args<T> a) {
  T* q_row = warp_shared<T>(a.D + a.Dv);
  T* acc = q_row + a.D;
  const int lane = lane_id();
  for (int64_t r = warp_global(); r < a.slices * a.T_; r += warp_count()) {
    const QueryRow<T> row(a, r);
    const int64_t i = row.i;
    const T *k = row.k, *v = row.v, *mask_row = row.mask_row;
    load_row(q_row, a.q + row.off[kQ] + i * a.row[kQ], a.D);
    zero_row(acc, a.Dv);
    __syncwarp();
    const int64_t keys = keys_seen(a, i);
    T running_max = -INFINITY, total = 0;
    for (int64_t c = 0; c < keys; c += 32) {
      const int64_t j = c + lane;
      const T s = j < keys ? score(a, q_row, k, mask_row, j) : T(-INFINITY);
      const T new_max = fmax(running_max, warp_max(s));
      if (new_max == T(-INFINITY)) continue;  // every key so far is hidden (uniform in the warp)
      const T rescale = exp(running_max - new_max);  // 0 while nothing was seen
      const T p = exp(s - new_max);                  // 0 for hidden keys
      total = total * rescale + warp_sum(p);
      running_max = new_max;
      for (int64_t d = lane; d < a.Dv; d += 32) acc[d] *= rescale;
      const int count = static_cast<int>(keys - c < 32 ? keys - c : 32);
      for (int jj = 0; jj < count; ++jj) {
        const T pj = __shfl_sync(kFull, p, jj);
        if (pj != T(0)) add_scaled_row(acc, v + (c + jj) * a.row[kV], a.Dv, pj);
      }
    }
    // A row that attends to nothing gives zeros and lse -inf, as the composed softmax does
    // (a NaN total stays NaN, as on the CPU: `total == 0`, not `!(total > 0)`).
    store_row(a.out + row.off[kOut] + i * a.row[kOut], acc, a.Dv, total == T(0) ? T(0) : T(1) / total);
    if (lane == 0) a.lse[r] = total == T(0) ? T(-INFINITY) : running_max + log(total);
    __syncwarp();  // the next row reuses this warp's shared rows
  }
}

// Backward pass 1: dq and delta, one warp per query row.
template <typename T>
__global__ void attention_backward_query_kernel(Args<T> a) {
  T* q_row = warp_shared<T>(2 * a.D + a.Dv);
  T* g_row = q_row + a.D;
  T* dq_acc = g_row + a.Dv;
  const int lane = lane_id();
  for (int64_t r = warp_global(); r < a.slices * a.T_; r += warp_count()) {
    const QueryRow<T> row(a, r);
    const int64_t i = row.i;
    const T *k = row.k, *v = row.v, *mask_row = row.mask_row;
    const T lse = a.lse[r];
    load_row(q_row, a.q + row.off[kQ] + i * a.row[kQ], a.D);
    load_row(g_row, a.g + row.off[kG] + i * a.row[kG], a.Dv);
    zero_row(dq_acc, a.D);
    __syncwarp();
    // A row that attended to nothing passes no gradient (its probabilities are all 0).
    const int64_t keys = lse == T(-INFINITY) ? 0 : keys_seen(a, i);
    T delta = 0;
    for (int64_t j = lane; j < keys; j += 32) {
      const T p = exp(score(a, q_row, k, mask_row, j) - lse);
      delta += p * dot(g_row, v + j * a.row[kV], a.Dv);
    }
    delta = warp_sum(delta);
    for (int64_t c = 0; c < keys; c += 32) {
      const int64_t j = c + lane;
      T ds = 0;
      if (j < keys) {
        const T p = exp(score(a, q_row, k, mask_row, j) - lse);
        ds = p * (dot(g_row, v + j * a.row[kV], a.Dv) - delta) * a.scale;
      }
      const int count = static_cast<int>(keys - c < 32 ? keys - c : 32);
      for (int jj = 0; jj < count; ++jj) {
        const T dsj = __shfl_sync(kFull, ds, jj);
        if (dsj != T(0)) add_scaled_row(dq_acc, k + (c + jj) * a.row[kK], a.D, dsj);
      }
    }
    store_row(a.dq + row.off[kDq] + i * a.row[kDq], dq_acc, a.D, T(1));
    if (lane == 0) a.delta[r] = delta;
    __syncwarp();
  }
}

// Backward pass 2: dk and dv, one warp per key row, over the queries that see the key.
template <typename T>
__global__ void attention_backward_key_kernel(Args<T> a) {
  T* k_row = warp_shared<T>(2 * (a.D + a.Dv));
  T* v_row = k_row + a.D;
  T* dk_acc = v_row + a.Dv;
  T* dv_acc = dk_acc + a.D;
  const int lane = lane_id();
  for (int64_t r = warp_global(); r < a.slices * a.S; r += warp_count()) {
    const int64_t n = r / a.S, j = r % a.S;
    int64_t off[kOperands];
    a.batch.offsets(n, off);
    const T* q = a.q + off[kQ];
    const T* g = a.g + off[kG];
    const T* mask_col = a.mask ? a.mask + off[kMask] + j * a.mask_col : nullptr;
    const T* lse = a.lse + n * a.T_;
    const T* delta = a.delta + n * a.T_;
    load_row(k_row, a.k + off[kK] + j * a.row[kK], a.D);
    load_row(v_row, a.v + off[kV] + j * a.row[kV], a.Dv);
    zero_row(dk_acc, a.D);
    zero_row(dv_acc, a.Dv);
    __syncwarp();
    const int64_t first = a.causal ? j : 0;  // under the causal mask only rows i >= j see key j
    for (int64_t c = first; c < a.T_; c += 32) {
      const int64_t i = c + lane;
      T p = 0, ds = 0;
      if (i < a.T_ && lse[i] != T(-INFINITY)) {
        const T* qi = q + i * a.row[kQ];
        T s = a.scale * dot(qi, k_row, a.D);
        if (mask_col) s += mask_col[i * a.row[kMask]];
        p = exp(s - lse[i]);
        ds = p * (dot(g + i * a.row[kG], v_row, a.Dv) - delta[i]) * a.scale;
      }
      const int count = static_cast<int>(a.T_ - c < 32 ? a.T_ - c : 32);
      for (int ii = 0; ii < count; ++ii) {
        const T pi = __shfl_sync(kFull, p, ii), dsi = __shfl_sync(kFull, ds, ii);
        if (pi != T(0)) add_scaled_row(dv_acc, g + (c + ii) * a.row[kG], a.Dv, pi);
        if (dsi != T(0)) add_scaled_row(dk_acc, q + (c + ii) * a.row[kQ], a.D, dsi);
      }
    }
    store_row(a.dk + off[kDk] + j * a.row[kDk], dk_acc, a.D, T(1));
    store_row(a.dv + off[kDv] + j * a.row[kDv], dv_acc, a.Dv, T(1));
    __syncwarp();
  }
}

// The operands' pointers and strides. Absent operands (the mask, forward's gradients) take
// q's place in the batch walker and are never read.
template <typename T>
Args<T> make_args(const std::array<const Tensor*, kOperands>& given, double scale, bool causal, const char* op) {
  const Tensor& q = *given[kQ];
  const int nd = q.dim();
  std::array<const Tensor*, kOperands> walk = given;
  for (const Tensor*& t : walk)
    if (!t || !t->defined()) t = &q;
  Args<T> a{};
  auto ptr = [&](Operand o) { return given[o] && given[o]->defined() ? static_cast<T*>(given[o]->raw_data()) : nullptr; };
  a.q = ptr(kQ), a.k = ptr(kK), a.v = ptr(kV), a.mask = ptr(kMask), a.g = ptr(kG);
  a.out = ptr(kOut), a.dq = ptr(kDq), a.dk = ptr(kDk), a.dv = ptr(kDv);
  for (int o = 0; o < kOperands; ++o) a.row[o] = walk[o]->strides()[nd - 2];
  a.mask_col = walk[kMask]->strides()[nd - 1];
  a.T_ = q.shape()[nd - 2];
  a.S = given[kK]->shape()[nd - 2];
  a.D = q.shape()[nd - 1];
  a.Dv = given[kV]->shape()[nd - 1];
  const Shape batch(q.shape().begin(), q.shape().end() - 2);
  a.slices = numel_of(batch);
  a.scale = static_cast<T>(scale);
  a.causal = causal;
  a.batch = make_strided<kOperands>(batch, walk, op);
  return a;
}

// Warps per block so that each warp's shared rows (`per_warp` elements) fit in the default
// 48 KiB of shared memory; a head too wide for even one warp is a clear error.
struct LaunchShape {
  unsigned blocks;
  int threads;
  size_t shared;
};

template <typename T>
LaunchShape launch_shape(int64_t rows, int64_t per_warp, const char* op) {
  constexpr size_t kShared = 48 * 1024;
  const size_t warp_bytes = static_cast<size_t>(per_warp) * sizeof(T);
  if (warp_bytes > kShared)
    fail(op, "heads this wide do not fit the CUDA kernel's shared memory (" + std::to_string(warp_bytes) +
                 " bytes per row, at most " + std::to_string(kShared) + ")");
  int warps = kThreads / 32;
  while (warps > 1 && warps * warp_bytes > kShared) --warps;
  return {blocks_for(rows, warps), warps * 32, warps * warp_bytes};
}

}  // namespace

void attention(const Tensor& out, const Tensor& lse, const Tensor& q, const Tensor& k, const Tensor& v,
               const Tensor& mask, double scale, bool causal) {
  dispatch_float(q.dtype(), "attention", [&](auto tag) {
    using T = decltype(tag);
    Args<T> a = make_args<T>({&q, &k, &v, &mask, nullptr, &out, nullptr, nullptr, nullptr}, scale, causal, "attention");
    a.lse = static_cast<T*>(lse.raw_data());
    const int64_t rows = a.slices * a.T_;
    if (rows == 0) return;
    const LaunchShape shape = launch_shape<T>(rows, a.D + a.Dv, "attention");
    ProfileScope profile("attention");
    attention_forward_kernel<T><<<shape.blocks, shape.threads, shape.shared, stream()>>>(a);
    check_launch("attention");
  });
}

void attention_backward(const Tensor& dq, const Tensor& dk, const Tensor& dv, const Tensor& grad_out,
                        const Tensor& q, const Tensor& k, const Tensor& v, const Tensor& lse, const Tensor& mask,
                        double scale, bool causal) {
  dispatch_float(q.dtype(), "attention_backward", [&](auto tag) {
    using T = decltype(tag);
    Args<T> a = make_args<T>({&q, &k, &v, &mask, &grad_out, nullptr, &dq, &dk, &dv}, scale, causal,
                             "attention_backward");
    a.lse = static_cast<T*>(lse.raw_data());
    Tensor delta = Tensor::empty(Shape{std::max<int64_t>(a.slices * a.T_, 1)}, q.dtype(), q.device());
    a.delta = static_cast<T*>(delta.raw_data());
    ProfileScope profile("attention_backward");
    if (const int64_t rows = a.slices * a.T_; rows > 0) {
      const LaunchShape shape = launch_shape<T>(rows, 2 * a.D + a.Dv, "attention_backward");
      attention_backward_query_kernel<T><<<shape.blocks, shape.threads, shape.shared, stream()>>>(a);
      check_launch("attention_backward");
    }
    if (const int64_t rows = a.slices * a.S; rows > 0) {
      // With no query rows nothing flows to the keys: the kernel writes zeros.
      const LaunchShape shape = launch_shape<T>(rows, 2 * (a.D + a.Dv), "attention_backward");
      attention_backward_key_kernel<T><<<shape.blocks, shape.threads, shape.shared, stream()>>>(a);
      check_launch("attention_backward");
    }
  });
}

}  // namespace mmgrad::cuda
