// What every CUDA kernel file shares: launching over n elements, dtype dispatch, value
// conversion (the GPU twin of backends/cpu/dispatch.h's convert), warp reductions.
#pragma once
#include <cuda_runtime.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <string>
#include <type_traits>

#include "backends/cuda/context.h"
#include "backends/cuda/strided.h"
#include "core/error.h"
#include "core/tensor.h"

namespace mmgrad::cuda {

constexpr int kThreads = 256;

inline unsigned blocks_for(int64_t n, int threads = kThreads) {
  int64_t b = (n + threads - 1) / threads;
  if (b < 1) b = 1;
  if (b > (1 << 30)) b = 1 << 30;  // grid-stride loops cover the rest
  return static_cast<unsigned>(b);
}

// Grid-stride loop: f(i) for i in [0, n).
template <typename F>
__global__ void for_each_index_kernel(int64_t n, F f) {
  for (int64_t i = blockIdx.x * static_cast<int64_t>(blockDim.x) + threadIdx.x; i < n;
       i += static_cast<int64_t>(gridDim.x) * blockDim.x)
    f(i);
}

template <typename F>
void launch_n(int64_t n, const char* op, F f) {
  if (n <= 0) return;
  ProfileScope profile(op);
  for_each_index_kernel<<<blocks_for(n), kThreads, 0, stream()>>>(n, f);
  check_launch(op);
}

// The dense fast path of elementwise kernels: when every operand is one run of stride 1
// (or, for an input, stride 0: one value broadcast, as a scalar operand is) and 16-byte
// aligned, each thread moves 16 bytes of each operand with one vector load or store instead
// of 4 (f32) scalar ones, and no flat-index-to-offset arithmetic is done. A tail that is not
// a whole pack runs element by element in the same launch.
template <typename T>
struct alignas(16) Pack {
  static constexpr int kSize = 16 / sizeof(T);
  T v[kSize];
};

inline bool aligned16(const void* p) { return reinterpret_cast<uintptr_t>(p) % 16 == 0; }

// True when operand 0 (the output) is dense and every input is dense or a broadcast value,
// all 16-byte aligned; `stride[k]` is then operand k's stride (0 or 1).
template <int K>
bool dense_operands(const Strided<K>& s, const void* const (&ptrs)[K]) {
  if (s.nd != 1 || s.stride[0][0] != 1 || !aligned16(ptrs[0])) return false;
  for (int k = 1; k < K; ++k) {
    const int64_t st = s.stride[k][0];
    if (st != 0 && (st != 1 || !aligned16(ptrs[k]))) return false;
  }
  return true;
}

// Pack i of a dense operand, or its one value repeated when the operand is broadcast.
template <typename T>
__device__ inline Pack<T> load_pack(const T* p, int64_t stride, int64_t i) {
  if (stride) return reinterpret_cast<const Pack<T>*>(p)[i];
  Pack<T> r;
  const T x = p[0];
  for (int j = 0; j < Pack<T>::kSize; ++j) r.v[j] = x;
  return r;
}

// bf16 is carried as raw bits, as on the CPU (core/dtype.h).
struct Bf16 {
  uint16_t bits;
};

__device__ inline float bf16_to_float(Bf16 v) { return __uint_as_float(static_cast<uint32_t>(v.bits) << 16); }
__device__ inline Bf16 float_to_bf16(float f) {
  uint32_t u = __float_as_uint(f);
  if ((u & 0x7fffffffu) > 0x7f800000u) return Bf16{static_cast<uint16_t>((u >> 16) | 0x40u)};
  uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
  return Bf16{static_cast<uint16_t>((u + rounding_bias) >> 16)};
}

// Value conversion with the CPU's rules: through f32 for bf16, != 0 for bool, float to
// integer truncating and saturating (NaN -> 0).
template <typename To, typename From>
__device__ inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, Bf16>) {
    return convert<To>(bf16_to_float(v));
  } else if constexpr (std::is_same_v<To, Bf16>) {
    return float_to_bf16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    if (!(v == v)) return To(0);
    if (v <= static_cast<From>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

// The same rules on the host, for scalars handed to kernels (fill values).
template <typename To>
inline To convert_on_host(double v) {
  if constexpr (std::is_same_v<To, Bf16>) {
    return Bf16{BFloat16::from_float(static_cast<float>(v))};
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != 0;
  } else if constexpr (std::is_integral_v<To>) {
    if (!(v == v)) return To(0);
    if (v <= static_cast<double>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (v >= static_cast<double>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

[[noreturn]] inline void unsupported(const char* op, DType dt, const char* which) {
  fail(op, std::string(dtype_name(dt)) + " tensors are not supported by this op on CUDA (" + which + ")");
}

template <typename F>
void dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    default: unsupported(op, dt, "use f32 or f64");
  }
}

template <typename F>
void dispatch_numeric(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    case DType::I32: f(int32_t{}); return;
    case DType::I64: f(int64_t{}); return;
    default: unsupported(op, dt, "f32, f64, i32 or i64");
  }
}

template <typename F>
void dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    case DType::BF16: f(Bf16{}); return;
    case DType::I32: f(int32_t{}); return;
    case DType::I64: f(int64_t{}); return;
    case DType::Bool: f(bool{}); return;
  }
}

// Accumulation type: f32 reductions accumulate in f32 within a thread's short run and in
// the warp tree; callers that need more (long sums) use double explicitly.
template <typename T>
__device__ inline T warp_sum(T v) {
  for (int o = 16; o > 0; o >>= 1) v += __shfl_xor_sync(0xffffffffu, v, o);
  return v;
}
template <typename T>
__device__ inline T warp_max(T v) {
  for (int o = 16; o > 0; o >>= 1) v = fmax(v, __shfl_xor_sync(0xffffffffu, v, o));
  return v;
}

// Records the first bad input a kernel meets (see context.h) without stopping it.
__device__ inline void record_device_error(int64_t* rec, int64_t code, int64_t op, int64_t value, int64_t bound) {
  if (atomicCAS(reinterpret_cast<unsigned long long*>(rec), 0ull, static_cast<unsigned long long>(code)) == 0ull) {
    rec[1] = op;
    rec[2] = value;
    rec[3] = bound;
  }
}

template <typename T>
__device__ inline void atomic_add(T* p, T v) {
  if constexpr (std::is_same_v<T, int64_t>) {
    atomicAdd(reinterpret_cast<unsigned long long*>(p), static_cast<unsigned long long>(v));
  } else {
    atomicAdd(p, v);
  }
}

}  // namespace mmgrad::cuda
