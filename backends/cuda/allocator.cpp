#include "backends/cuda/allocator.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include <algorithm>
#include <mutex>
#include <set>
#include <thread>
#include <unordered_map>
#include <vector>

#include "backends/cuda/context.h"
#include "backends/cuda/kernels.h"
#include "core/error.h"

namespace mmgrad::cuda {
namespace {

constexpr size_t kMinBlock = 512;               // every size is rounded to this
constexpr size_t kSmallRequest = 1 << 20;       // <= 1 MiB: small pool
constexpr size_t kSmallSegment = 2 << 20;       // small pool segments
constexpr size_t kMidRequest = 10 << 20;        // < 10 MiB: share 20 MiB segments
constexpr size_t kMidSegment = 20 << 20;
constexpr size_t kSegmentRound = 2 << 20;

struct Block {
  char* ptr = nullptr;
  size_t size = 0;
  bool allocated = false;
  bool small = false;
  Block* prev = nullptr;  // neighbours within the same segment
  Block* next = nullptr;
  int pool = 0;           // 0: the shared pool; else a CUDA graph's private pool (below)
};

struct BySizeThenAddress {
  bool operator()(const Block* a, const Block* b) const {
    return a->size != b->size ? a->size < b->size : a->ptr < b->ptr;
  }
};

size_t round_up(size_t n, size_t to) { return (n + to - 1) / to * to; }

class CachingAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (!backend_if_available()) fail("allocate", "cuda:0 is not available: " + unavailable_reason());
    std::lock_guard<std::mutex> lock(mu_);
    set_device(0);
    const size_t size = round_up(std::max<size_t>(nbytes, 1), kMinBlock);
    const bool small = size <= kSmallRequest;
    // Only the capturing thread's allocations belong to the graph being recorded.
    const int pool_id = capture_pool_ != 0 && std::this_thread::get_id() == capture_thread_ ? capture_pool_ : 0;
    Pool& pool = pools_[pool_id];
    auto& free_blocks = small ? pool.small_free : pool.large_free;
    Block key;
    key.size = size;
    auto it = free_blocks.lower_bound(&key);  // the smallest free block that fits
    Block* block;
    if (it != free_blocks.end()) {
      block = *it;
      free_blocks.erase(it);
    } else {
      block = new_segment(segment_size(size), small);
      block->pool = pool_id;
      pool.segments.push_back(block);
    }
    const size_t remainder = block->size - size;
    if (remainder >= (small ? kMinBlock : kSmallRequest)) {
      Block* rest = new Block{block->ptr + size, remainder, false, small, block, block->next, block->pool};
      if (block->next) block->next->prev = rest;
      block->next = rest;
      block->size = size;
      free_blocks.insert(rest);
    }
    block->allocated = true;
    live_[block->ptr] = block;
    stats_.in_use += block->size;
    stats_.peak_in_use = std::max(stats_.peak_in_use, stats_.in_use);
    return block->ptr;
  }

  void deallocate(void* ptr, size_t) override {
    std::lock_guard<std::mutex> lock(mu_);
    auto it = live_.find(static_cast<char*>(ptr));
    if (it == live_.end()) return;  // not ours: never happens through Storage
    Block* block = it->second;
    live_.erase(it);
    if (capture_pool_ != 0 && block->pool != capture_pool_) {
      // Memory from outside the graph freed while it is recorded: if the graph used it,
      // every replay touches it again, so nothing else may have it until the graph is gone
      // (held whichever thread frees it: holding is only ever too careful).
      pools_[capture_pool_].held.push_back(block);
      return;
    }
    release_block(block);
  }

  // ---- CUDA graph pools (graph.cpp). While a graph is captured, allocations come from a pool
  // of its own: the addresses recorded in the graph are used again by every replay, so they
  // must not be handed to anyone else while the graph exists. Freed inside the capture, a
  // block is reused by later allocations of the same capture (stream order holds within the
  // graph); freed after it, it stays in the pool.
  int begin_graph_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    if (capture_pool_ != 0) fail("cuda graph", "a CUDA graph is already being captured");
    capture_pool_ = next_pool_id_++;
    capture_thread_ = std::this_thread::get_id();
    pools_[capture_pool_];
    return capture_pool_;
  }
  void end_graph_pool() {
    std::lock_guard<std::mutex> lock(mu_);
    capture_pool_ = 0;
  }
  // The graph is gone: its pool's memory (and what it held) goes back to the shared pool.
  void release_graph_pool(int id) {
    std::lock_guard<std::mutex> lock(mu_);
    auto found = pools_.find(id);
    if (found == pools_.end() || id == 0) return;
    Pool& pool = found->second;
    Pool& shared = pools_[0];
    for (Block* first : pool.segments)
      for (Block* b = first; b; b = b->next) b->pool = 0;
    for (Block* b : pool.small_free) shared.small_free.insert(b);
    for (Block* b : pool.large_free) shared.large_free.insert(b);
    for (Block* b : pool.segments) shared.segments.push_back(b);
    std::vector<Block*> held = std::move(pool.held);
    pools_.erase(found);
    for (Block* b : held) release_block(b);
  }

  DeviceMemoryStats stats() {
    std::lock_guard<std::mutex> lock(mu_);
    return stats_;
  }
  void reset_peak() {
    std::lock_guard<std::mutex> lock(mu_);
    stats_.peak_in_use = stats_.in_use;
  }
  void empty_cache() {
    std::lock_guard<std::mutex> lock(mu_);
    release_free_segments();
  }
  void set_limit(size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    limit_ = bytes;
  }

 private:
  struct Pool {
    std::set<Block*, BySizeThenAddress> small_free, large_free;
    std::vector<Block*> segments;  // each segment's first block (never merged away)
    std::vector<Block*> held;      // shared-pool blocks freed during this pool's capture
  };

  // A block no one uses any more goes back to its pool's free blocks, merged with free
  // neighbours of its segment.
  void release_block(Block* block) {
    stats_.in_use -= block->size;
    block->allocated = false;
    Pool& pool = pools_[block->pool];
    auto& free_blocks = block->small ? pool.small_free : pool.large_free;
    for (Block* nb : {block->prev, block->next}) {
      if (!nb || nb->allocated) continue;
      free_blocks.erase(nb);
      if (nb == block->prev) {
        nb->size += block->size;
        nb->next = block->next;
        if (block->next) block->next->prev = nb;
        delete block;
        block = nb;
      } else {
        block->size += nb->size;
        block->next = nb->next;
        if (nb->next) nb->next->prev = block;
        delete nb;
      }
    }
    free_blocks.insert(block);
  }

  static size_t segment_size(size_t size) {
    if (size <= kSmallRequest) return kSmallSegment;
    if (size < kMidRequest) return kMidSegment;
    return round_up(size, kSegmentRound);
  }

  Block* new_segment(size_t bytes, bool small) {
    void* p = nullptr;
    cudaError_t err = try_malloc(&p, bytes);
    if (err != cudaSuccess && capture_pool_ == 0) {
      // Give the cache back and try once more before reporting (not while a graph is being
      // captured: cudaFree would end the capture).
      release_free_segments();
      err = try_malloc(&p, bytes);
    }
    if (err != cudaSuccess) {
      size_t free_b = 0, total_b = 0;
      cudaMemGetInfo(&free_b, &total_b);
      constexpr double kMiB = 1 << 20;
      fail("cuda allocate",
           fmt::format("out of memory on cuda:0: asked for {:.1f} MiB; mmgrad has {:.1f} MiB in use "
                       "and {:.1f} MiB cached{}; the device has {:.1f} MiB free of {:.1f} MiB",
                       bytes / kMiB, stats_.in_use / kMiB, (stats_.reserved - stats_.in_use) / kMiB,
                       limit_ ? fmt::format(" (limit {:.1f} MiB set by set_device_memory_limit)", limit_ / kMiB) : "",
                       free_b / kMiB, total_b / kMiB) +
               (capture_pool_ != 0 ? " (while capturing a CUDA graph: the cache could not be released)" : ""));
    }
    stats_.reserved += bytes;
    stats_.segments += 1;
    stats_.malloc_calls += 1;
    Block* b = new Block{static_cast<char*>(p), bytes, false, small, nullptr, nullptr};
    segment_bytes_[b->ptr] = bytes;
    return b;
  }

  cudaError_t try_malloc(void** p, size_t bytes) {
    if (limit_ && stats_.reserved + bytes > limit_) return cudaErrorMemoryAllocation;
    RelaxedCaptureMode relaxed;  // a graph's pool may grow while it is recorded
    cudaError_t err = cudaMalloc(p, bytes);
    if (err != cudaSuccess) cudaGetLastError();
    return err;
  }

  // A segment is wholly free when its first block is free and has no neighbours. Only the
  // shared pool's: a graph's pool belongs to its graph.
  void release_free_segments() {
    if (capture_pool_ != 0) return;
    Pool& shared = pools_[0];
    for (auto* free_blocks : {&shared.small_free, &shared.large_free}) {
      for (auto it = free_blocks->begin(); it != free_blocks->end();) {
        Block* b = *it;
        if (!b->prev && !b->next && segment_bytes_.count(b->ptr)) {
          cudaFree(b->ptr);
          stats_.reserved -= segment_bytes_[b->ptr];
          stats_.segments -= 1;
          segment_bytes_.erase(b->ptr);
          shared.segments.erase(std::find(shared.segments.begin(), shared.segments.end(), b));
          delete b;
          it = free_blocks->erase(it);
        } else {
          ++it;
        }
      }
    }
  }

  std::mutex mu_;
  std::unordered_map<int, Pool> pools_{{0, Pool{}}};  // 0: shared; others: CUDA graphs' pools
  int capture_pool_ = 0;                            // the pool of the graph being captured, if any
  std::thread::id capture_thread_;                  // the thread capturing it
  int next_pool_id_ = 1;
  std::unordered_map<char*, Block*> live_;
  std::unordered_map<char*, size_t> segment_bytes_;  // segment start -> cudaMalloc size
  DeviceMemoryStats stats_;
  size_t limit_ = 0;
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
