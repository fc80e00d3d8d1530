// The address tables of a pointer-array batched GEMM (matmul.cpp): when an operand's batch
// dims need more than one stride (attention's heads as a view [B, H, T, D] of a [B, T, H, D]
// projection), cuBLAS's strided-batched call cannot walk it, and instead of copying the
// operand into a dense one, a kernel writes each batch element's matrix address into a device
// table that cublasGemmBatchedEx reads. No host work per element, nothing uploaded (so it may
// be recorded into a CUDA graph).
#include "backends/cuda/batch_pointers.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {

void fill_batch_pointer_tables(const Tensor& tables, const Strided<3>& walk, int64_t count,
                               const std::array<const void*, 3>& bases, int64_t element_bytes) {
  const char* b0 = static_cast<const char*>(bases[0]);
  const char* b1 = static_cast<const char*>(bases[1]);
  const char* b2 = static_cast<const char*>(bases[2]);
  const char** out = static_cast<const char**>(tables.raw_data());
  launch_n(count, "matmul (batch pointers)", [=] __device__(int64_t i) {
    int64_t off[3];
    walk.offsets(i, off);
    out[i] = b0 + off[0] * element_bytes;
    out[count + i] = b1 + off[1] * element_bytes;
    out[2 * count + i] = b2 + off[2] * element_bytes;
  });
}

}  // namespace mmgrad::cuda
