// The CUDA caching allocator: backends/block_pool.h's bookkeeping over cudaMalloc/cudaFree,
// behind a mutex, with the out-of-memory report.
#include "backends/cuda/allocator.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <mutex>

#include "backends/block_pool.h"
#include "backends/cuda/context.h"
#include "backends/cuda/kernels.h"
#include "core/error.h"

namespace mmgrad::cuda {
namespace {

class CachingAllocator final : public Allocator {
 public:
  CachingAllocator()
      : pool_({[](size_t bytes) -> void* {
                 RelaxedCaptureMode relaxed;  // a graph's pool may grow while it is recorded
                 void* p = nullptr;
                 if (cudaMalloc(&p, bytes) != cudaSuccess) {
                   cudaGetLastError();
                   return nullptr;
                 }
                 return p;
               },
               [](void* p) { cudaFree(p); }}) {}

  void* allocate(size_t nbytes) override {
    if (!backend_if_available()) fail("allocate", "cuda:0 is not available: " + unavailable_reason());
    std::lock_guard<std::mutex> lock(mu_);
    set_device(0);
    if (void* p = pool_.allocate(nbytes)) return p;
    const BlockPoolStats s = pool_.stats();
    size_t free_b = 0, total_b = 0;
    cudaMemGetInfo(&free_b, &total_b);
    constexpr double kMiB = 1 << 20;
    const size_t limit = pool_.limit();
    fail("cuda allocate",
         fmt::format("out of memory on cuda:0: asked for {:.1f} MiB; mmgrad has {:.1f} MiB in use "
                     "and {:.1f} MiB cached{}; the device has {:.1f} MiB free of {:.1f} MiB",
                     BlockPool::segment_bytes_for(nbytes) / kMiB, s.in_use / kMiB, (s.reserved - s.in_use) / kMiB,
                     limit ? fmt::format(" (limit {:.1f} MiB set by set_device_memory_limit)", limit / kMiB) : "",
                     free_b / kMiB, total_b / kMiB) +
             (pool_.recording() ? " (while capturing a CUDA graph: the cache could not be released)" : ""));
  }

  void deallocate(void* ptr, size_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.deallocate(ptr);
  }

  DeviceMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    const BlockPoolStats s = pool_.stats();
    return {s.in_use, s.peak_in_use, s.reserved, s.segments, s.malloc_calls};
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.reset_peak();
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.release_free_segments();
  }
  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.set_limit(bytes);
  }
  int begin_graph_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    return pool_.begin_graph_pool();
  }
  void end_graph_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.end_graph_pool();
  }
  void release_graph_pool(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    pool_.release_graph_pool(id);
  }

 private:
  std::mutex mu_;
  BlockPool pool_;
};

CachingAllocator& caching_allocator() {
  // Never destroyed: tensors in static storage may be freed after main returns, when the
  // CUDA runtime is already gone; their memory goes back with the process.
  static CachingAllocator* a = new CachingAllocator;
  return *a;
}

// Registered at load time, so tensors can be created on cuda:0 before any op has run; the
// first allocation finds out whether there is a GPU.
[[maybe_unused]] const bool kRegistered = [] {
  register_allocator(DeviceType::CUDA, &caching_allocator());
  return true;
}();

}  // namespace

Allocator& device_allocator() { return caching_allocator(); }
DeviceMemoryStats device_memory_stats() { return caching_allocator().stats(); }
void reset_peak_device_memory() { caching_allocator().reset_peak(); }
void empty_device_cache() { caching_allocator().empty_cache(); }
void set_device_memory_limit(size_t bytes) { caching_allocator().set_limit(bytes); }
int begin_graph_pool() { return caching_allocator().begin_graph_pool(); }
void end_graph_pool() { caching_allocator().end_graph_pool(); }
void release_graph_pool(int id) { caching_allocator().release_graph_pool(id); }

}  // namespace mmgrad::cuda
