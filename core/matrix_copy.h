// Where a copy of a batch of matrices [batch..., rows, cols] should put its values so that a
// GEMM reads the copy with no further copy: the batch dense in row-major order (so one stride
// walks it), and each matrix in the memory order it had (a transposed view, column-major in
// memory, stays column-major, so the copy walks the source forwards and the GEMM takes a
// transpose flag). A batch that is one matrix broadcast (batch strides 0) is copied once.
// Used where mixed precision rounds GEMM operands to bf16: the autograd layer's autocast
// (autograd/autocast.h) and the CUDA backend's bf16 operands (backends/cuda/bf16_operand.h).
#pragma once
#include "core/tensor.h"

namespace mmgrad {

struct MatrixCopyPlan {
  // The view of the source to copy (same storage and offset as the source), and the shape of
  // the dense buffer to copy it into (the same shape).
  Shape source_shape, source_strides;
  // Strides over the dense buffer that give back the source's shape and values.
  Shape result_strides;
};

// t has at least 2 dims.
MatrixCopyPlan plan_matrix_copy(const Tensor& t);

// t's values in a new tensor of `dtype` laid out by the plan (same shape as t, the plan's
// strides), written by `copy(dst, src)`: the device's copy kernel, converting dtypes.
Tensor copy_as_matrices(const Tensor& t, DType dtype, void (*copy)(const Tensor& dst, const Tensor& src));

}  // namespace mmgrad
