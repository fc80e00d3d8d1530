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

// TF32 tensor-core math for f32 GEMMs; also MMGRAD_CUDA_TF32=1 at start-up.
void set_allow_tf32(bool on);
bool allow_tf32();

}  // namespace mmgrad::cuda
