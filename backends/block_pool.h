// The bookkeeping of the CUDA caching allocator (after PyTorch's CUDACachingAllocator, much
// reduced), apart from CUDA itself so that it is tested on any machine: where segments come
// from is a pair of functions (cudaMalloc / cudaFree on a GPU, host memory in the tests).
//
// cudaMalloc and cudaFree synchronise the device and cost tens of microseconds; a training
// step allocates thousands of tensors. So freed blocks stay cached and are reused:
//  - two kinds: small requests (<= 1 MiB) are carved from 2 MiB segments, large ones from
//    segments of their own size (rounded to 2 MiB; 20 MiB for requests under 10 MiB, so
//    that mid-sized activations share segments);
//  - best fit; a block larger than needed is split and the remainder stays free; a freed
//    block merges with free neighbours of its segment;
//  - when no segment can be had, every wholly free segment is released and the request
//    retried; allocate returns nullptr if it still fails (the caller reports);
//  - graph pools: while a CUDA graph is recorded, the recording thread's allocations come
//    from a pool of the graph's own, since every replay reuses the recorded addresses. Blocks
//    freed inside the recording are reused by it alone; blocks of the shared pool freed
//    meanwhile are held (the graph may read them on every replay) until the graph is
//    released, when its pool and what it held go back to the shared pool. Nothing is
//    released to the device while a graph is recorded (cudaFree would end the capture).
// Not thread-safe by itself: the CUDA allocator holds a mutex around it.
#pragma once
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <thread>

namespace mmgrad {

struct BlockPoolStats {
  size_t in_use = 0;        // bytes in live (and held) blocks, rounded sizes
  size_t peak_in_use = 0;   // since start or reset_peak()
  size_t reserved = 0;      // bytes of segments held from the device (in use + cached)
  int64_t segments = 0;     // segments held now
  int64_t malloc_calls = 0; // segments ever obtained (a well-warmed loop stops adding)
};

class BlockPool {
 public:
  struct Segments {
    std::function<void*(size_t bytes)> allocate;  // nullptr when the device has no room
    std::function<void(void* ptr)> release;
  };
  explicit BlockPool(Segments segments);
  ~BlockPool();  // forgets the bookkeeping; segments are not released (see the CUDA allocator)
  BlockPool(const BlockPool&) = delete;
  BlockPool& operator=(const BlockPool&) = delete;

  // A block of at least nbytes for thread `caller` (graph pools serve only their recording
  // thread); nullptr when no segment can be had even after releasing the cached ones.
  void* allocate(size_t nbytes, std::thread::id caller = std::this_thread::get_id());
  void deallocate(void* ptr);  // pointers not from allocate are ignored

  // Graph pools. begin returns the pool's id; one recording at a time.
  int begin_graph_pool(std::thread::id recorder = std::this_thread::get_id());
  void end_graph_pool();
  void release_graph_pool(int id);
  bool recording() const;

  // Releases every wholly free segment of the shared pool (none while recording).
  void release_free_segments();
  // The segment size a request of nbytes would need (what an out-of-memory report names).
  static size_t segment_bytes_for(size_t nbytes);

  BlockPoolStats stats() const;
  void reset_peak();
  void set_limit(size_t bytes);  // on reserved bytes; 0 = none
  size_t limit() const;

 private:
  struct State;
  std::unique_ptr<State> s_;
};

}  // namespace mmgrad
