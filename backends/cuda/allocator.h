// The CUDA caching allocator: cached segments, best fit with splitting and merging, release
// and retry on out-of-memory, private pools for CUDA graphs being recorded. The bookkeeping
// is backends/block_pool.h (tested on any machine); this is its CUDA face.
// All kernels run on one stream, so a block freed by the host can be reused by the next op
// at once: the stream orders the old reads before the new writes.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/storage.h"

namespace mmgrad::cuda {

struct DeviceMemoryStats {
  size_t in_use = 0;        // bytes in live blocks (rounded sizes)
  size_t peak_in_use = 0;   // since start or reset_peak_memory()
  size_t reserved = 0;      // bytes held from cudaMalloc (in use + cached)
  int64_t segments = 0;     // cudaMalloc calls currently held
  int64_t malloc_calls = 0; // cudaMalloc calls ever made (a well-warmed loop stops adding)
};

Allocator& device_allocator();
DeviceMemoryStats device_memory_stats();
void reset_peak_device_memory();
// Returns every wholly free segment to CUDA.
void empty_device_cache();
// A limit on reserved bytes (0 = none): lets a test force the out-of-memory path.
void set_device_memory_limit(size_t bytes);

// CUDA graph pools (graph.cpp): between begin and end every allocation comes from a pool
// private to the graph being captured, and shared-pool blocks freed meanwhile are held; the
// pool and what it held go back to the shared pool when the graph is released.
int begin_graph_pool();
void end_graph_pool();
void release_graph_pool(int id);

}  // namespace mmgrad::cuda
