// One process-wide thread pool for mmgrad's own loops (elementwise, reductions, GEMM when
// built without BLAS). Nested parallel_for calls run inline, so kernels can call each other
// without over-subscribing the cores.
#pragma once
#include <cstdint>
#include <functional>

namespace mmgrad {

// Runs fn(chunk_begin, chunk_end) over [begin, end) split into at most max_chunks() chunks
// of at least `grain` iterations, which the threads claim one at a time (so which thread
// runs a chunk varies: a result must depend on the chunk's range only). Blocks until all
// chunks are done; rethrows the first exception a chunk threw.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// Threads used by parallel_for: MMGRAD_NUM_THREADS if set, else the hardware's count.
int num_threads();
void set_num_threads(int n);
// The most chunks one parallel_for is cut into: a few per thread, for load balance.
int max_chunks();

}  // namespace mmgrad
