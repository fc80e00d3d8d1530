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

Tensor bf16_operand(const Tensor& t) {
  const MatrixCopyPlan plan = plan_matrix_copy(t);
  Tensor rounded = Tensor::empty(plan.source_shape, DType::BF16, t.device());
  copy(rounded, Tensor::alias(t, plan.source_shape, plan.source_strides, t.offset()));
  return Tensor::alias(rounded, t.shape(), plan.result_strides, 0);
}

}  // namespace mmgrad::cuda
