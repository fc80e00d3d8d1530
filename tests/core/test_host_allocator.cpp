// The CPU caching allocator: large blocks are reused, accounting is exact, limits hold.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "core/host_allocator.h"

using namespace mmgrad;

TEST(HostAllocator, LargeBlocksAreReusedAfterFree) {
  host_empty_cache();
  void* first = nullptr;
  {
    Tensor t = empty({1 << 18});  // 1 MiB
    first = t.raw_data();
  }
  HostMemoryStats before = host_memory_stats();
  EXPECT_GE(before.cached, size_t(1) << 20);
  Tensor again = empty({1 << 18});
  EXPECT_EQ(again.raw_data(), first);
  HostMemoryStats after = host_memory_stats();
  EXPECT_EQ(after.cache_hits, before.cache_hits + 1);
  EXPECT_EQ(after.cached, before.cached - (size_t(1) << 20));
}

TEST(HostAllocator, NearbySizesShareASizeClass) {
  host_empty_cache();
  void* first = nullptr;
  {
    Tensor t = empty({300000});  // 1,200,000 bytes, rounded up to its size class
    first = t.raw_data();
  }
  Tensor similar = empty({290000});  // 1,160,000 bytes: the same class (1 MiB steps of 256 KiB)
  EXPECT_EQ(similar.raw_data(), first);
}

TEST(HostAllocator, InUseAndPeakTrackLiveTensors) {
  HostMemoryStats s0 = host_memory_stats();
  {
    Tensor a = empty({1 << 20});  // 4 MiB
    HostMemoryStats s1 = host_memory_stats();
    EXPECT_EQ(s1.in_use, s0.in_use + (size_t(4) << 20));
    EXPECT_GE(s1.peak_in_use, s1.in_use);
  }
  EXPECT_EQ(host_memory_stats().in_use, s0.in_use);
}

TEST(HostAllocator, EmptyCacheAndLimit) {
  { Tensor t = empty({1 << 20}); }
  EXPECT_GT(host_memory_stats().cached, 0u);
  host_empty_cache();
  EXPECT_EQ(host_memory_stats().cached, 0u);
  host_set_cache_limit(0);  // nothing may be kept
  { Tensor t = empty({1 << 20}); }
  EXPECT_EQ(host_memory_stats().cached, 0u);
  host_set_cache_limit(size_t(2) << 30);
}

TEST(HostAllocator, AlignmentIsACacheLine) {
  for (int64_t n : {1, 7, 1000, 1 << 16, 1 << 20}) {
    Tensor t = empty({n});
    EXPECT_EQ(reinterpret_cast<uintptr_t>(t.raw_data()) % 64, 0u) << n;
  }
}

// Allocation failure is a clear mmgrad::Error, never a crash, and the allocator stays usable.
// 16 TiB is more than any of these machines can map (sanitizer builds run with
// allocator_may_return_null=1, so their allocator also returns null instead of aborting).
TEST(HostAllocator, AnAllocationTheSystemRefusesIsAClearError) {
  HostMemoryStats before = host_memory_stats();
  try {
    Tensor huge = empty({int64_t{1} << 42});
    FAIL() << "allocating 16 TiB succeeded";
  } catch (const Error& e) {
    std::string message = e.what();
    EXPECT_NE(message.find("out of memory: could not allocate 17592186044416 bytes on cpu"), std::string::npos) << message;
    EXPECT_NE(message.find("the system refused it"), std::string::npos) << message;
  }
  EXPECT_EQ(host_memory_stats().in_use, before.in_use);
  Tensor fine = ones({1000});
  EXPECT_EQ(sum(fine).item(), 1000.0);
}

TEST(HostAllocator, AMemoryLimitIsEnforcedWithTheSameError) {
  HostMemoryStats before = host_memory_stats();
  host_set_memory_limit(before.in_use + (size_t(16) << 20));  // 16 MiB more than now
  {
    Tensor a = empty({int64_t{3} << 20});  // 12 MiB: fits
    try {
      Tensor b = empty({int64_t{2} << 20});  // 8 MiB more: does not
      FAIL() << "the limit was not enforced";
    } catch (const Error& e) {
      std::string message = e.what();
      EXPECT_NE(message.find("out of memory: could not allocate 8388608 bytes on cpu"), std::string::npos) << message;
      EXPECT_NE(message.find("MMGRAD_CPU_MEMORY_LIMIT_MB"), std::string::npos) << message;
    }
  }
  { Tensor c = empty({int64_t{3} << 20}); }  // freed memory counts no more
  // A block waiting in the cache does not get around the limit either.
  host_set_memory_limit(before.in_use + (size_t(4) << 20));
  EXPECT_GE(host_memory_stats().cached, size_t(12) << 20);
  EXPECT_THROW(empty({int64_t{3} << 20}), Error);
  host_set_memory_limit(SIZE_MAX);
  EXPECT_EQ(host_memory_stats().in_use, before.in_use);
}
