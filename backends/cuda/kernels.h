// The CUDA backend's kernels (one file per family, as on the CPU) and its registration.
#pragma once
#include "backends/backend.h"
#include "backends/cuda/cuda.h"

namespace mmgrad::cuda {

#define MMGRAD_DECLARE_CUDA_KERNEL(op, args) void op args;
MMGRAD_BACKEND_OPS(MMGRAD_DECLARE_CUDA_KERNEL)
#undef MMGRAD_DECLARE_CUDA_KERNEL

// The backend when a usable GPU is present, else nullptr (cuda.h's unavailable_reason
// says why).
const Backend* backend_if_available();

}  // namespace mmgrad::cuda
