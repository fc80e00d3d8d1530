// What code outside the backend may ask of CUDA, with no CUDA header needed: whether a GPU
// is there, waiting for queued work, memory statistics and limits, TF32. Built only with
// the CUDA backend (MMGRAD_HAVE_CUDA).
#pragma once
#include <string>

#include "backends/cuda/allocator.h"

namespace mmgrad::cuda {

// True when cuda:0 works; otherwise unavailable_reason() says why.
bool available();
const std::string& unavailable_reason();

// Waits for all queued work; raises any device-side error (context.h).
void synchronize();

// How f32 GEMMs run (f64 GEMMs are always exact f64):
//   F32  - f32 arithmetic, the CPU's results within f32 rounding (the default);
//   TF32 - tensor cores, inputs rounded to 10 mantissa bits, f32 accumulation;
//   BF16 - tensor cores, inputs rounded to bf16 (8 bits), f32 accumulation: mixed precision
//          for the matmuls (attention's included) while everything else, the stored
//          activations, the master weights and the optimizer state stay f32.
// MMGRAD_CUDA_MATMUL=f32|tf32|bf16 in the environment sets it at start-up.
enum class MatmulPrecision { F32, TF32, BF16 };
void set_matmul_precision(MatmulPrecision p);
MatmulPrecision matmul_precision();
MatmulPrecision parse_matmul_precision(const std::string& name);  // "f32", "tf32", "bf16"
const char* matmul_precision_name(MatmulPrecision p);

// Kernel-level profile (MMGRAD_CUDA_PROFILE=1 in the environment): every kernel, cuBLAS
// call and copy the backend issues is bracketed by CUDA events; profile_report() waits for
// the device and returns a table of GPU time per kernel name (calls, ms, share), sorted.
bool profiling();
void profile_reset();
std::string profile_report(int steps = 1);  // times divided by `steps`

}  // namespace mmgrad::cuda
