// Row kernels (softmax, LayerNorm, cross-entropy): one warp per row of the last dim, rows
// spread over blocks of kWarps warps with a grid-stride loop.
#pragma once
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {

constexpr int kWarps = kThreads / 32;

inline unsigned row_blocks(int64_t rows) { return blocks_for(rows, kWarps); }

// The first row this warp handles and the step to the next.
__device__ inline int64_t first_row() { return blockIdx.x * static_cast<int64_t>(kWarps) + threadIdx.x / 32; }
__device__ inline int64_t row_step() { return static_cast<int64_t>(gridDim.x) * kWarps; }
__device__ inline int lane() { return threadIdx.x % 32; }

}  // namespace mmgrad::cuda
