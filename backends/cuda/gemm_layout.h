// How cuBLAS (column-major) sees a row-major operand: a rows x cols view with row stride rs
// and column stride cs is either row-major (no flag) or column-major in memory (a
// transposed view: the transpose flag), with a leading dimension; nullopt when no flag
// describes it (a broadcast or doubly strided view); the one batch stride of an operand, if
// it has one. And the compute type of an f32 GEMM at
// the backend's matmul precision. Shared by matmul.cpp (cuBLAS) and matmul_bias.cpp
// (cuBLASLt).
#pragma once
#include <cublas_api.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "backends/cuda/cuda.h"
#include "core/tensor.h"

namespace mmgrad::cuda {

struct GemmLayout {
  bool transposed;  // column-major in memory (a row-major operand with transposed strides)
  int64_t ld;
};

inline std::optional<GemmLayout> gemm_layout_of(int64_t rows, int64_t cols, int64_t rs, int64_t cs) {
  if ((cs == 1 || cols == 1) && (rows == 1 || rs >= std::max<int64_t>(cols, 1)))
    return GemmLayout{false, rows == 1 ? std::max<int64_t>(cols, 1) : rs};
  if ((rs == 1 || rows == 1) && (cols == 1 || cs >= std::max<int64_t>(rows, 1)))
    return GemmLayout{true, cols == 1 ? std::max<int64_t>(rows, 1) : cs};
  return std::nullopt;
}

// One stride that walks every batch element of t (dims `batch` of its shape) in row-major
// batch order, if there is one (0 for an operand broadcast over the batch).
inline std::optional<int64_t> batch_stride(const Tensor& t, const Shape& batch) {
  std::optional<int64_t> stride;
  int64_t expected_next = -1;  // stride the next (inner) batch dim must have times its size
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    const int64_t s = t.strides()[d];
    if (!stride) {
      stride = s;
    } else if (s != expected_next) {
      return std::nullopt;
    }
    expected_next = s * batch[d];
  }
  return stride.value_or(0);
}

// f32 arithmetic, or tensor cores on TF32- or bf16-rounded inputs with f32 accumulation.
inline cublasComputeType_t f32_compute_type(MatmulPrecision p) {
  switch (p) {
    case MatmulPrecision::F32: return CUBLAS_COMPUTE_32F;
    case MatmulPrecision::TF32: return CUBLAS_COMPUTE_32F_FAST_TF32;
    case MatmulPrecision::BF16: return CUBLAS_COMPUTE_32F_FAST_16BF;
  }
  return CUBLAS_COMPUTE_32F;
}

}  // namespace mmgrad::cuda
