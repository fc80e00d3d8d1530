// parallel_for: exact coverage, chunking, exceptions, nesting and concurrent callers.
#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <future>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <thread>
#include <vector>

#include "core/error.h"
#include "core/parallel.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using mmtest::ThreadCountGuard;

namespace {


struct Chunk {
  int64_t lo, hi;
};

// Runs parallel_for and records every index visit and every chunk.
struct Coverage {
  std::vector<std::atomic<int>> hits;
  std::mutex m;
  std::vector<Chunk> chunks;
  explicit Coverage(size_t n) : hits(n) {}
};

void check_coverage(int64_t begin, int64_t end, int64_t grain) {
  SCOPED_TRACE("begin " + std::to_string(begin) + " end " + std::to_string(end) + " grain " +
               std::to_string(grain));
  const int64_t n = std::max<int64_t>(end - begin, 0);
  Coverage cov(static_cast<size_t>(n));
  bool out_of_range = false;
  parallel_for(begin, end, grain, [&](int64_t lo, int64_t hi) {
    std::lock_guard<std::mutex> lock(cov.m);
    cov.chunks.push_back({lo, hi});
    for (int64_t i = lo; i < hi; ++i) {
      if (i < begin || i >= end) {
        out_of_range = true;
        continue;
      }
      cov.hits[static_cast<size_t>(i - begin)].fetch_add(1);
    }
  });
  EXPECT_FALSE(out_of_range);
  for (int64_t i = 0; i < n; ++i)
    ASSERT_EQ(cov.hits[static_cast<size_t>(i)].load(), 1) << "index " << begin + i;
  if (n == 0) {
    EXPECT_TRUE(cov.chunks.empty()) << "an empty range calls nothing";
    return;
  }
  EXPECT_GE(cov.chunks.size(), 1u);
  EXPECT_LE(static_cast<int>(cov.chunks.size()), max_chunks());
  for (const Chunk& c : cov.chunks) EXPECT_LT(c.lo, c.hi) << "empty chunk";
}

// Runs fn on another thread and fails (then exits, since a deadlocked thread cannot be
// joined) if it does not finish within `seconds`.
void run_with_deadline(const std::function<void()>& fn, int seconds) {
  auto fut = std::async(std::launch::async, fn);
  if (fut.wait_for(std::chrono::seconds(seconds)) != std::future_status::ready) {
    std::fprintf(stderr, "parallel_for test did not finish within %d s: deadlock\n", seconds);
    std::fflush(stderr);
    std::_Exit(1);
  }
  fut.get();
}

}  // namespace

TEST(ParallelFor, CoversTheRangeExactlyOnce) {
  ThreadCountGuard restore;
  for (int threads : {1, 2, 4}) {
    set_num_threads(threads);
    ASSERT_EQ(num_threads(), threads);
    for (int64_t n : {0, 1, 2, 3, 7, 64, 100, 1000, 4097, 12345})
      for (int64_t grain : {0, 1, 3, 64, 1000, 100000}) {
        check_coverage(0, n, grain);
        check_coverage(17, 17 + n, grain);
        check_coverage(-50, -50 + n, grain);
      }
    check_coverage(10, 5, 1);  // reversed: nothing
  }
}

TEST(ParallelFor, SingleThreadRunsOneChunk) {
  ThreadCountGuard restore;
  set_num_threads(1);
  std::vector<Chunk> chunks;
  parallel_for(3, 1003, 1, [&](int64_t lo, int64_t hi) { chunks.push_back({lo, hi}); });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(chunks[0].lo, 3);
  EXPECT_EQ(chunks[0].hi, 1003);
}

TEST(ParallelFor, GrainBoundsTheNumberOfChunks) {
  ThreadCountGuard restore;
  set_num_threads(4);
  // A range no longer than the grain is one chunk, run inline on the caller's thread.
  std::vector<Chunk> chunks;
  std::thread::id caller = std::this_thread::get_id(), ran_on;
  parallel_for(0, 100, 100, [&](int64_t lo, int64_t hi) {
    chunks.push_back({lo, hi});
    ran_on = std::this_thread::get_id();
  });
  ASSERT_EQ(chunks.size(), 1u);
  EXPECT_EQ(ran_on, caller);
  // The documented contract: at most max_chunks() (a few per thread) chunks of at least
  // `grain` iterations, and as many as that when the range allows.
  ASSERT_GT(max_chunks(), num_threads());  // several per thread
  for (int64_t n : {5, 7, 150, 250, 1001, 100000})
    for (int64_t grain : {2, 3, 100, 400}) {
      std::mutex m;
      std::vector<Chunk> cs;
      parallel_for(0, n, grain, [&](int64_t lo, int64_t hi) {
        std::lock_guard<std::mutex> lock(m);
        cs.push_back({lo, hi});
      });
      EXPECT_LE(static_cast<int64_t>(cs.size()), max_chunks());
      if (n / grain >= max_chunks()) {
        EXPECT_EQ(static_cast<int64_t>(cs.size()), max_chunks()) << "n " << n;
      }
      if (cs.size() > 1) {
        for (const Chunk& c : cs) {
          EXPECT_GE(c.hi - c.lo, grain) << "n " << n << " grain " << grain << " chunk [" << c.lo
                                        << ", " << c.hi << ") of " << cs.size();
        }
      }
    }
}

TEST(ParallelFor, PropagatesExceptions) {
  ThreadCountGuard restore;
  for (int threads : {1, 3}) {
    set_num_threads(threads);
    EXPECT_THROW(parallel_for(0, 1000, 1,
                              [](int64_t lo, int64_t hi) {
                                if (lo <= 777 && 777 < hi) throw std::runtime_error("chunk failed at 777");
                              }),
                 std::runtime_error);
    try {
      parallel_for(0, 1000, 1, [](int64_t lo, int64_t hi) {
        if (lo <= 5 && 5 < hi) fail("kernel", "bad element 5");
      });
      ADD_FAILURE() << "no exception";
    } catch (const Error& e) {
      EXPECT_EQ(e.op(), "kernel");  // the exception type and message survive
      EXPECT_NE(std::string(e.what()).find("bad element 5"), std::string::npos);
    }
    // Every chunk throwing still yields one exception, and the pool keeps working after.
    EXPECT_THROW(parallel_for(0, 1000, 1, [](int64_t, int64_t) { throw std::logic_error("all"); }),
                 std::logic_error);
    std::atomic<int64_t> total{0};
    parallel_for(0, 1000, 1, [&](int64_t lo, int64_t hi) { total += hi - lo; });
    EXPECT_EQ(total.load(), 1000);
  }
}

TEST(ParallelFor, NestedCallsRunInlineWithoutDeadlock) {
  ThreadCountGuard restore;
  set_num_threads(4);
  run_with_deadline(
      [] {
        std::vector<std::atomic<int>> hits(64 * 100);
        std::atomic<bool> inline_ok{true};
        parallel_for(0, 64, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t i = lo; i < hi; ++i) {
            std::thread::id outer = std::this_thread::get_id();
            int inner_calls = 0;
            parallel_for(0, 100, 1, [&](int64_t ilo, int64_t ihi) {
              ++inner_calls;
              if (std::this_thread::get_id() != outer) inline_ok = false;
              for (int64_t j = ilo; j < ihi; ++j) hits[i * 100 + j].fetch_add(1);
            });
            if (inner_calls != 1) inline_ok = false;  // inline: one chunk, the whole range
          }
        });
        EXPECT_TRUE(inline_ok.load());
        for (auto& h : hits) ASSERT_EQ(h.load(), 1);
        // Three levels deep.
        std::atomic<int64_t> count{0};
        parallel_for(0, 8, 1, [&](int64_t lo, int64_t hi) {
          for (int64_t a = lo; a < hi; ++a)
            parallel_for(0, 8, 1, [&](int64_t lo2, int64_t hi2) {
              for (int64_t b = lo2; b < hi2; ++b)
                parallel_for(0, 8, 1, [&](int64_t lo3, int64_t hi3) { count += hi3 - lo3; });
            });
        });
        EXPECT_EQ(count.load(), 512);
      },
      30);
}

TEST(ParallelFor, ConcurrentCallersFromOtherThreads) {
  ThreadCountGuard restore;
  set_num_threads(3);
  run_with_deadline(
      [] {
        std::atomic<int> failures{0};
        std::vector<std::thread> callers;
        for (int t = 0; t < 4; ++t)
          callers.emplace_back([&failures, t] {
            for (int rep = 0; rep < 50; ++rep) {
              const int64_t n = 1000 + 37 * t + rep;
              std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
              parallel_for(0, n, 7, [&](int64_t lo, int64_t hi) {
                for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
              });
              for (auto& h : hits)
                if (h.load() != 1) ++failures;
            }
          });
        for (auto& c : callers) c.join();
        EXPECT_EQ(failures.load(), 0);
      },
      60);
}

// Short jobs back to back, as a training step issues them: a worker that is still leaving
// one job, or only joining it, while the caller publishes the next must neither run a chunk
// twice, miss one, nor call a finished job's function (each job's function is a fresh
// object, destroyed when its parallel_for returns). Jobs of 2 to 9 chunks, some with
// chunks that take a while, so the workers join at every point of a job.
TEST(ParallelFor, BackToBackJobsHandOffCleanly) {
  ThreadCountGuard restore;
  for (int threads : {2, 3}) {
    set_num_threads(threads);
    run_with_deadline(
        [] {
          int failures = 0;
          for (int job = 0; job < 20000; ++job) {
            const int64_t n = 2 + job % 8;
            std::vector<std::atomic<int>> hits(static_cast<size_t>(n));
            auto alive = std::make_unique<std::atomic<bool>>(true);
            std::atomic<bool>* flag = alive.get();
            parallel_for(0, n, 1, [&hits, flag, job](int64_t lo, int64_t hi) {
              if (!flag->load()) std::abort();  // a finished job's function was called
              if (job % 97 == 0) std::this_thread::sleep_for(std::chrono::microseconds(50));
              for (int64_t i = lo; i < hi; ++i) hits[static_cast<size_t>(i)].fetch_add(1);
            });
            flag->store(false);
            for (auto& h : hits)
              if (h.load() != 1) ++failures;
          }
          EXPECT_EQ(failures, 0);
        },
        120);
  }
}

TEST(ParallelFor, UsesWorkerThreadsForLargeRanges) {
  ThreadCountGuard restore;
  set_num_threads(4);
  // Each chunk waits until a second distinct thread shows up (or a timeout), so the caller
  // cannot drain every chunk alone before a worker wakes.
  std::mutex m;
  std::vector<std::thread::id> ids;
  parallel_for(0, 4, 1, [&](int64_t, int64_t) {
    {
      std::lock_guard<std::mutex> lock(m);
      ids.push_back(std::this_thread::get_id());
    }
    auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(2);
    for (;;) {
      {
        std::lock_guard<std::mutex> lock(m);
        bool two = false;
        for (auto& id : ids) two |= id != ids[0];
        if (two) break;
      }
      if (std::chrono::steady_clock::now() > deadline) break;
      std::this_thread::sleep_for(std::chrono::milliseconds(1));
    }
  });
  ASSERT_EQ(ids.size(), 4u);
  bool distinct = false;
  for (auto& id : ids) distinct |= id != ids[0];
  EXPECT_TRUE(distinct) << "all chunks ran on one thread with num_threads() == 4";
}

// Review fix: resizing the pool while another thread runs parallel work is safe, and
// resizing from inside a task is refused.
TEST(ParallelFor, ResizeWhileAnotherThreadWorks) {
  ThreadCountGuard restore;
  std::atomic<bool> stop{false};
  std::atomic<int64_t> total{0};
  std::thread worker([&] {
    while (!stop) {
      std::atomic<int64_t> n{0};
      parallel_for(0, 10000, 100, [&](int64_t lo, int64_t hi) { n += hi - lo; });
      EXPECT_EQ(n.load(), 10000);
      total += n;
    }
  });
  for (int i = 0; i < 50; ++i) set_num_threads(1 + i % 3);
  stop = true;
  worker.join();
  EXPECT_GT(total.load(), 0);
  EXPECT_THROW(parallel_for(0, 100, 1, [&](int64_t, int64_t) { set_num_threads(2); }), mmgrad::Error);
}
