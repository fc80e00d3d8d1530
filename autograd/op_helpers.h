// Small helpers shared by the op files: operand checks with good messages, and the
// backend call.
#pragma once
#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "backends/backend.h"

namespace mmgrad::detail {

inline void check_defined(const Tensor& t, const char* op, const char* name) {
  if (!t.defined()) fail(op, std::string("operand '") + name + "' is an undefined tensor");
}

// Both operands on one device with one dtype: mmgrad never converts implicitly.
inline void check_compatible(const Tensor& a, const Tensor& b, const char* op) {
  check_defined(a, op, "a");
  check_defined(b, op, "b");
  if (a.device() != b.device())
    fail(op, "operands are on different devices", {describe("a", a), describe("b", b)});
  if (a.dtype() != b.dtype())
    fail(op, "operands have different dtypes (convert one with to())",
         {describe("a", a), describe("b", b)});
}

inline void check_floating(const Tensor& t, const char* op) {
  check_defined(t, op, "x");
  if (t.dtype() != DType::F32 && t.dtype() != DType::F64)
    fail(op, "expects an f32 or f64 tensor (convert bf16 and integers with to())",
         {describe("x", t)});
}

inline void check_integer_index(const Tensor& t, const char* op) {
  if (t.dtype() != DType::I64 && t.dtype() != DType::I32)
    fail(op, "indices must be i64 or i32", {describe("index", t)});
}

// The broadcast shape of a and b, or an error naming both operands.
inline Shape broadcast_or_fail(const Tensor& a, const Tensor& b, const char* op) {
  try {
    return broadcast_shapes(a.shape(), b.shape(), op);
  } catch (const Error& e) {
    fail(op, e.detail(), {describe("a", a), describe("b", b)});
  }
}

// A fill value must be representable in an integer dtype (NaN and out-of-range values are
// errors rather than undefined conversions).
inline void check_value_fits(DType dtype, double value, const char* op) {
  double lo = 0, hi = 0;
  if (dtype == DType::I32) { lo = -2147483648.0; hi = 2147483647.0; }
  else if (dtype == DType::I64) { lo = -9223372036854775808.0; hi = 9223372036854775807.0; }
  else return;
  if (!(value >= lo && value <= hi))
    fail(op, fmt::format("value {} does not fit in {}", value, dtype_name(dtype)));
}

// A fresh contiguous tensor like `t` but with another shape/dtype.
inline Tensor empty_like_shape(const Tensor& t, const Shape& shape) {
  return Tensor::empty(shape, t.dtype(), t.device());
}

// The product a [..., M, K] @ b [..., K, N] (batch dims broadcast; a batched, dense a times a
// plain matrix b is one GEMM) with no autograd record: f32 for bf16 operands (autocast's,
// autograd/autocast.h), else the operands' dtype. Counts its FLOPs.
Tensor matmul_product(const Tensor& a, const Tensor& b);

// x [rows, K] @ weight^T + bias with no autograd record: one kernel with the bias added as
// the product is stored where the backend has matmul_bias, else matmul then add. x and
// weight may be bf16 (autocast's rounded operands, autograd/autocast.h): the product then
// has the bias's dtype, f32.
Tensor affine_rows(const Tensor& x, const Tensor& weight, const Tensor& bias);

}  // namespace mmgrad::detail
