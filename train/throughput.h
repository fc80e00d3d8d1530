// What the step line reports beside the loss: achieved matmul FLOP/s against the device's
// measured ceiling (MFU), and peak tensor memory.
#pragma once
#include <cstddef>

#include "core/device.h"

namespace mmgrad::train {

// The best of several f32 1024 x 1024 x 1024 matmuls on `device`, in GFLOP/s: the ceiling the
// MFU figures divide by (about 0.3 s on 2 CPU cores).
double measure_matmul_ceiling_gflops(Device device);

// High-water mark of memory held by tensors on `device` since the process started (the CPU's
// caching allocator, or the CUDA one), in bytes.
size_t peak_tensor_memory(Device device);

}  // namespace mmgrad::train
