#include "backends/cuda/bf16_operand.h"

#include <cstdlib>
#include <string>

#include "backends/cuda/gemm_layout.h"
#include "backends/cuda/kernels.h"

namespace mmgrad::cuda {

bool bf16_gemm_operands() {
  static const bool on = [] {
    const char* v = std::getenv("MMGRAD_CUDA_BF16_OPERANDS");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

Tensor bf16_operand(const Tensor& t) {
  const int nd = t.dim();
  const int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  const int64_t rs = t.strides()[nd - 2], cs = t.strides()[nd - 1];
  const std::optional<GemmLayout> layout = gemm_layout_of(rows, cols, rs, cs);
  const bool transposed = layout && layout->transposed;
  bool batch_broadcast = true;  // every batch element is the same matrix
  for (int d = 0; d < nd - 2; ++d) batch_broadcast = batch_broadcast && (t.shape()[d] == 1 || t.strides()[d] == 0);

  // The matrices to round, in memory order: a transposed view is read as the row-major
  // [cols, rows] matrix it is in memory, so the copy walks memory forwards.
  Shape shape, strides;
  if (!batch_broadcast) {
    shape.assign(t.shape().begin(), t.shape().end() - 2);
    strides.assign(t.strides().begin(), t.strides().end() - 2);
  }
  shape.push_back(transposed ? cols : rows);
  shape.push_back(transposed ? rows : cols);
  strides.push_back(transposed ? cs : rs);
  strides.push_back(transposed ? rs : cs);
  const Tensor source = Tensor::alias(t, shape, strides, t.offset());
  Tensor rounded = Tensor::empty(shape, DType::BF16, t.device());
  copy(rounded, source);

  // Back to t's shape: batch strides of the dense copy (0 when broadcast), and the matrix's
  // row and column strides swapped back for a transposed operand.
  Shape out_strides(nd, 0);
  const int batch_dims = static_cast<int>(rounded.dim()) - 2;
  for (int d = 0; d < batch_dims; ++d) out_strides[d] = rounded.strides()[d];
  out_strides[nd - 2] = transposed ? 1 : cols;
  out_strides[nd - 1] = transposed ? rows : 1;
  return Tensor::alias(rounded, t.shape(), out_strides, 0);
}

}  // namespace mmgrad::cuda
