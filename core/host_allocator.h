// The CPU's caching allocator.
//
// Training allocates and frees the same large activation buffers every step. Returning them
// to the OS each time costs a munmap, and the next allocation page-faults fresh zeroed pages
// in again: measured on the MLP example, that was 60% of the run time. Large blocks are
// therefore kept in size-class free lists and reused; small ones go straight to malloc,
// which already caches them.
#pragma once
#include <cstddef>
#include <cstdint>

#include "core/storage.h"

namespace mmgrad {

struct HostMemoryStats {
  size_t in_use = 0;       // bytes handed out and not yet freed (rounded sizes)
  size_t peak_in_use = 0;  // high-water mark of in_use
  size_t cached = 0;       // bytes held in free lists for reuse
  uint64_t allocations = 0, cache_hits = 0;
};

HostMemoryStats host_memory_stats();
// Returns every cached block to the OS.
void host_empty_cache();
// Caps the bytes kept for reuse (default 2 GiB, or MMGRAD_CPU_CACHE_MB).
void host_set_cache_limit(size_t bytes);
size_t host_cache_limit();

// Caps the bytes tensors may hold at once (default: no cap, or MMGRAD_CPU_MEMORY_LIMIT_MB):
// an allocation beyond it fails with the same clear out-of-memory error as one the system
// refuses. Lets a shared machine bound a run, and tests force an allocation failure.
void host_set_memory_limit(size_t bytes);

// The allocator registered for DeviceType::CPU.
Allocator& host_allocator();

}  // namespace mmgrad
