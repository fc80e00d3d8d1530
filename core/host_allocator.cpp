#include "core/host_allocator.h"

#include <cstdint>
#include <cstdlib>
#include <map>
#include <mutex>
#include <string>
#include <unordered_map>
#include <vector>

#include <fmt/format.h>

#include "core/error.h"

namespace mmgrad {
namespace {

constexpr size_t kAlignment = 64;          // a cache line; the widest AVX-512 load
constexpr size_t kCacheMin = size_t(1) << 16;  // smaller blocks: malloc caches them well

// Size classes: four per power of two above kCacheMin, so at most 25% is wasted.
size_t size_class(size_t n) {
  n = (n + kAlignment - 1) / kAlignment * kAlignment;
  if (n < kCacheMin) return n;
  int top = 63 - __builtin_clzll(n);
  size_t step = size_t(1) << (top - 2);
  return (n + step - 1) / step * step;
}

size_t megabytes_from_env(const char* name, size_t fallback) {
  if (const char* env = std::getenv(name)) {
    long mb = std::atol(env);
    if (mb >= 0) return static_cast<size_t>(mb) << 20;
  }
  return fallback;
}
size_t default_limit() { return megabytes_from_env("MMGRAD_CPU_CACHE_MB", size_t(2) << 30); }
size_t default_memory_limit() { return megabytes_from_env("MMGRAD_CPU_MEMORY_LIMIT_MB", SIZE_MAX); }

class CachingHostAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    size_t size = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    ++stats_.allocations;
    if (size > memory_limit_ || stats_.in_use > memory_limit_ - size)
      out_of_memory(nbytes, "the limit of " + std::to_string(memory_limit_ >> 20) +
                                " MiB (MMGRAD_CPU_MEMORY_LIMIT_MB) would be exceeded");
    void* p = nullptr;
    if (size >= kCacheMin) {
      // The smallest cached block of at least `size`, up to twice it: a somewhat larger
      // block already in memory beats touching fresh pages (which is what peak resident
      // memory counts), and with four classes per power of two an exact match is often
      // missing at the moment a new activation is made.
      auto it = free_.lower_bound(size);
      if (it != free_.end() && it->first <= 2 * size) {
        size = it->first;
        p = it->second.back();
        it->second.pop_back();
        if (it->second.empty()) free_.erase(it);
        stats_.cached -= size;
        ++stats_.cache_hits;
      }
    }
    if (!p) p = std::aligned_alloc(kAlignment, size);
    if (!p && stats_.cached > 0) {  // free the cache and retry before giving up
      release_locked();
      p = std::aligned_alloc(kAlignment, size);
    }
    if (!p) out_of_memory(nbytes, "the system refused it");
    stats_.in_use += size;
    if (stats_.in_use > stats_.peak_in_use) stats_.peak_in_use = stats_.in_use;
    if (size >= kCacheMin) block_size_[p] = size;
    return p;
  }

  void deallocate(void* ptr, size_t nbytes) override {
    if (!ptr) return;
    size_t size = size_class(nbytes);
    std::lock_guard<std::mutex> lock(mutex_);
    if (size >= kCacheMin) {  // the block may be larger than asked for (see allocate)
      auto it = block_size_.find(ptr);
      if (it != block_size_.end()) {
        size = it->second;
        block_size_.erase(it);
      }
    }
    stats_.in_use -= size;
    if (size >= kCacheMin && stats_.cached + size <= limit_) {
      free_[size].push_back(ptr);
      stats_.cached += size;
      return;
    }
    std::free(ptr);
  }

  HostMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mutex_);
    return stats_;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mutex_);
    release_locked();
  }
  void set_memory_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    memory_limit_ = bytes;
  }
  size_t limit() {
    std::lock_guard<std::mutex> lock(mutex_);
    return limit_;
  }
  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mutex_);
    limit_ = bytes;
    if (stats_.cached > limit_) release_locked();
  }

 private:
  [[noreturn]] void out_of_memory(size_t nbytes, const std::string& why) const {
    fail("allocate", "out of memory: could not allocate " + std::to_string(nbytes) + " bytes on cpu: " + why + " (" +
                         fmt::format("{:.1f}", static_cast<double>(stats_.in_use) / (1 << 20)) + " MiB in use by tensors)");
  }
  void release_locked() {
    for (auto& [size, blocks] : free_)
      for (void* p : blocks) std::free(p);
    free_.clear();
    stats_.cached = 0;
  }

  std::mutex mutex_;
  std::map<size_t, std::vector<void*>> free_;        // size class -> cached blocks (never empty)
  std::unordered_map<void*, size_t> block_size_;      // live cached-size blocks -> their size
  size_t limit_ = default_limit();                // cache cap
  size_t memory_limit_ = default_memory_limit();  // cap on bytes in use by tensors
  HostMemoryStats stats_;
};

CachingHostAllocator& instance() {
  // Never destroyed: tensors in static objects may free into it during exit.
  static auto* a = new CachingHostAllocator;
  return *a;
}

}  // namespace

Allocator& host_allocator() { return instance(); }
HostMemoryStats host_memory_stats() { return instance().stats(); }
void host_empty_cache() { instance().empty_cache(); }
void host_set_cache_limit(size_t bytes) { instance().set_limit(bytes); }
size_t host_cache_limit() { return instance().limit(); }
void host_set_memory_limit(size_t bytes) { instance().set_memory_limit(bytes); }

}  // namespace mmgrad
