// Turning a runtime DType into a C++ type for templated kernels.
#pragma once
#include <fmt/format.h>

#include <limits>
#include <type_traits>

#include "core/error.h"
#include "core/parallel.h"
#include "core/tensor.h"

namespace mmgrad::cpu {

// f(T{}) with T = float or double; other dtypes are an error naming the op.
template <typename F>
void dispatch_float(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    default:
      fail(op, fmt::format("{} tensors are not supported by this op (use f32 or f64; convert "
                           "bf16 with to(DType::F32))",
                           dtype_name(dt)));
  }
}

// f32, f64, i32, i64.
template <typename F>
void dispatch_numeric(DType dt, const char* op, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    case DType::I32: f(int32_t{}); return;
    case DType::I64: f(int64_t{}); return;
    default:
      fail(op, fmt::format("{} tensors are not supported by this op", dtype_name(dt)));
  }
}

// Every dtype, bf16 and bool included (copies and fills).
template <typename F>
void dispatch_all(DType dt, F&& f) {
  switch (dt) {
    case DType::F32: f(float{}); return;
    case DType::F64: f(double{}); return;
    case DType::BF16: f(BFloat16{}); return;
    case DType::I32: f(int32_t{}); return;
    case DType::I64: f(int64_t{}); return;
    case DType::Bool: f(bool{}); return;
  }
}

// Value conversion that goes through float for bf16.
template <typename To, typename From>
inline To convert(From v) {
  if constexpr (std::is_same_v<To, From>) {
    return v;
  } else if constexpr (std::is_same_v<From, BFloat16>) {
    return convert<To>(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, BFloat16>) {
    return BFloat16(static_cast<float>(v));
  } else if constexpr (std::is_same_v<To, bool>) {
    return v != From(0);
  } else if constexpr (std::is_integral_v<To> && std::is_floating_point_v<From>) {
    // Truncates toward zero and saturates at the type's range; NaN becomes 0. (A plain cast
    // of an out-of-range float is undefined behaviour.)
    if (!(v == v)) return To(0);
    if (v <= static_cast<From>(std::numeric_limits<To>::min())) return std::numeric_limits<To>::min();
    if (v >= static_cast<From>(std::numeric_limits<To>::max())) return std::numeric_limits<To>::max();
    return static_cast<To>(v);
  } else {
    return static_cast<To>(v);
  }
}

}  // namespace mmgrad::cpu
