// How cuBLAS (column-major) sees a row-major operand: a rows x cols view with row stride rs
// and column stride cs is either row-major (no flag) or column-major in memory (a
// transposed view: the transpose flag), with a leading dimension; nullopt when no flag
// describes it (a broadcast or doubly strided view). And the compute type of an f32 GEMM at
// the backend's matmul precision. Shared by matmul.cpp (cuBLAS) and matmul_bias.cpp
// (cuBLASLt).
#pragma once
#include <cublas_api.h>

#include <algorithm>
#include <cstdint>
#include <optional>

#include "backends/cuda/cuda.h"

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
