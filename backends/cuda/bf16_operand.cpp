#include "backends/cuda/bf16_operand.h"

#include <cstdlib>
#include <string>

#include "backends/cuda/kernels.h"
#include "core/matrix_copy.h"

namespace mmgrad::cuda {

bool bf16_gemm_operands() {
  static const bool on = [] {
    const char* v = std::getenv("MMGRAD_CUDA_BF16_OPERANDS");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

Tensor bf16_operand(const Tensor& t) { return copy_as_matrices(t, DType::BF16, copy); }

}  // namespace mmgrad::cuda
