// The caching allocator's bookkeeping (backends/block_pool.h) over host memory: reuse,
// splitting and merging, release and retry when the device is full, and the pools of CUDA
// graphs being recorded (which the GPU tests exercise too, but only on a GPU). Runs in every
// build.
#include <gtest/gtest.h>

#include <cstdlib>
#include <map>
#include <thread>

#include "backends/block_pool.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

namespace {

constexpr size_t kMiB = size_t{1} << 20;

// Segments from the host, with a budget like a device's memory; records what it did.
struct FakeDevice {
  size_t budget = size_t{1} << 40;
  size_t held = 0;
  int obtained = 0, released = 0;
  std::map<void*, size_t> segments;
  BlockPool::Segments source() {
    return {[this](size_t bytes) -> void* {
              if (held + bytes > budget) return nullptr;
              void* p = std::aligned_alloc(512, bytes);
              segments[p] = bytes;
              held += bytes;
              ++obtained;
              return p;
            },
            [this](void* p) {
              held -= segments.at(p);
              segments.erase(p);
              std::free(p);
              ++released;
            }};
  }
  ~FakeDevice() {
    for (auto& [p, n] : segments) std::free(p);
  }
};

TEST(BlockPool, ReusesSplitsAndMergesBlocks) {
  FakeDevice dev;
  BlockPool pool(dev.source());
  void* a = pool.allocate(4 * kMiB);  // a 20 MiB mid-size segment
  EXPECT_EQ(dev.obtained, 1);
  EXPECT_EQ(pool.stats().reserved, 20 * kMiB);
  void* b = pool.allocate(4 * kMiB);  // the same segment's remainder
  EXPECT_EQ(dev.obtained, 1);
  EXPECT_EQ(static_cast<char*>(b) - static_cast<char*>(a), static_cast<ptrdiff_t>(4 * kMiB));
  pool.deallocate(a);
  pool.deallocate(b);
  // Freed neighbours merged: one request for 16 MiB fits without a new segment.
  void* c = pool.allocate(16 * kMiB);
  EXPECT_EQ(c, a);
  EXPECT_EQ(dev.obtained, 1);
  pool.deallocate(c);
  // Small requests share 2 MiB segments; a freed one is reused at once.
  void* s1 = pool.allocate(1000);
  void* s2 = pool.allocate(1000);
  EXPECT_EQ(static_cast<char*>(s2) - static_cast<char*>(s1), 1024);
  pool.deallocate(s1);
  EXPECT_EQ(pool.allocate(900), s1);
  EXPECT_EQ(pool.stats().in_use, 2048u);
  pool.deallocate(nullptr);  // not ours: ignored
  EXPECT_EQ(pool.stats().in_use, 2048u);
}

TEST(BlockPool, ReleasesTheCacheAndRetriesWhenTheDeviceIsFull) {
  FakeDevice dev;
  dev.budget = 64 * kMiB;
  BlockPool pool(dev.source());
  void* a = pool.allocate(40 * kMiB);
  pool.deallocate(a);  // cached, not released
  EXPECT_EQ(dev.released, 0);
  void* b = pool.allocate(50 * kMiB);  // needs a new segment: the cached 40 MiB goes back first
  ASSERT_NE(b, nullptr);
  EXPECT_EQ(dev.released, 1);
  EXPECT_EQ(pool.allocate(30 * kMiB), nullptr);  // still no room: the caller reports
  pool.set_limit(60 * kMiB);
  pool.deallocate(b);
  EXPECT_EQ(pool.allocate(62 * kMiB), nullptr) << "over the limit";
  EXPECT_NE(pool.allocate(58 * kMiB), nullptr);
  EXPECT_EQ(BlockPool::segment_bytes_for(1000), 2 * kMiB);
  EXPECT_EQ(BlockPool::segment_bytes_for(3 * kMiB), 20 * kMiB);
  EXPECT_EQ(BlockPool::segment_bytes_for(1024 * kMiB), 1024 * kMiB);
}

TEST(BlockPool, AGraphPoolKeepsItsAddressesAndWhatItsRecordingFreed) {
  FakeDevice dev;
  BlockPool pool(dev.source());
  // The shared pool has a cached block before the recording starts.
  void* cached = pool.allocate(4 * kMiB);
  void* before = pool.allocate(4 * kMiB);  // alive before; freed during the recording
  pool.deallocate(cached);
  pool.deallocate(pool.allocate(30 * kMiB));  // a wholly free segment, releasable
  const int segments_before = dev.obtained;

  const int id = pool.begin_graph_pool();
  EXPECT_TRUE(pool.recording());
  void* g1 = pool.allocate(4 * kMiB);
  EXPECT_NE(g1, cached) << "the recording must not take the shared pool's cached blocks";
  EXPECT_GT(dev.obtained, segments_before);
  pool.deallocate(g1);
  EXPECT_EQ(pool.allocate(4 * kMiB), g1) << "freed inside the recording: reused by it";
  pool.deallocate(before);  // the graph may read it on every replay: held
  // Another thread allocating meanwhile gets shared memory, never the graph's.
  void* other = nullptr;
  std::thread t([&] { other = pool.allocate(4 * kMiB); });
  t.join();
  EXPECT_EQ(other, cached);
  // No segment goes back to the device while recording, even when one is needed.
  dev.budget = dev.held;
  EXPECT_EQ(pool.allocate(64 * kMiB), nullptr);
  EXPECT_EQ(dev.released, 0);
  dev.budget = size_t{1} << 40;
  pool.end_graph_pool();
  EXPECT_FALSE(pool.recording());

  // After the recording: shared allocations get neither the held block nor the graph's.
  std::vector<void*> after;
  for (int i = 0; i < 6; ++i) after.push_back(pool.allocate(4 * kMiB));
  for (void* p : after) {
    EXPECT_NE(p, before);
    EXPECT_NE(p, g1);
  }
  // Released: the graph's memory and the held block serve the shared pool again.
  const size_t in_use_with_graph = pool.stats().in_use;
  pool.deallocate(g1);  // the graph's output, dropped by its owner
  pool.release_graph_pool(id);
  EXPECT_LT(pool.stats().in_use, in_use_with_graph);
  const int obtained = dev.obtained;
  void* again1 = pool.allocate(4 * kMiB);   // best fit: the held block, exactly 4 MiB
  void* again2 = pool.allocate(19 * kMiB);  // only the graph's whole segment (20 MiB) is that large
  EXPECT_EQ(again1, before);
  EXPECT_EQ(again2, g1);
  EXPECT_EQ(dev.obtained, obtained);
  for (void* p : after) pool.deallocate(p);
  pool.deallocate(again1);
  pool.deallocate(again2);
  pool.deallocate(other);
  EXPECT_EQ(pool.stats().in_use, 0u);
  pool.release_free_segments();
  EXPECT_EQ(pool.stats().reserved, 0u);
  EXPECT_EQ(dev.held, 0u);
}

TEST(BlockPool, OneRecordingAtATime) {
  FakeDevice dev;
  BlockPool pool(dev.source());
  pool.begin_graph_pool();
  EXPECT_MMGRAD_ERROR(pool.begin_graph_pool(), "cuda graph", "already being captured");
  pool.end_graph_pool();
  const int second = pool.begin_graph_pool();
  pool.end_graph_pool();
  pool.release_graph_pool(second);
  pool.release_graph_pool(12345);  // unknown ids are ignored
}

}  // namespace
