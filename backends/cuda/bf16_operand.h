// Mixed precision's GEMM operands: an f32 operand rounded to bf16 once, in a bf16 tensor
// cuBLAS reads with its native bf16 tensor-core kernels (bf16 A and B, f32 accumulation and
// output). CUBLAS_COMPUTE_32F_FAST_16BF on the f32 operands rounds the same way inside the
// GEMM, but its kernels read twice the bytes and convert in the main loop; the explicit
// rounding costs one pass over each operand (read 4 bytes, write 2) and lets the GEMM run at
// the bf16 rate. MMGRAD_CUDA_BF16_OPERANDS=0 keeps the FAST_16BF path (the A/B timing in
// bench/gpu_check.sh).
#pragma once
#include "core/tensor.h"

namespace mmgrad::cuda {

// True unless MMGRAD_CUDA_BF16_OPERANDS=0 (read once).
bool bf16_gemm_operands();

// t (f32, on the GPU, at least 2-D: [batch..., rows, cols]) rounded to bf16 (round to nearest
// even), as a tensor of t's shape whose strides cuBLAS reads as it would read t's: a
// transposed view (column-major in memory) stays a transposed view of a dense copy, and an
// operand broadcast over the whole batch (batch strides 0) is rounded once and broadcast
// again. A matrix no transpose flag describes comes back dense row-major.
Tensor bf16_operand(const Tensor& t);

}  // namespace mmgrad::cuda
