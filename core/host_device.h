// MMGRAD_HOST_DEVICE marks small header functions (Philox, bf16 conversion, strided
// indexing) that the CUDA kernels call too, so the GPU computes exactly what the CPU does.
// Outside nvcc it expands to nothing.
#pragma once
#ifdef __CUDACC__
#define MMGRAD_HOST_DEVICE __host__ __device__
#else
#define MMGRAD_HOST_DEVICE
#endif
