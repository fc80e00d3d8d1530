// One process-wide thread pool for mmgrad's own loops (elementwise, reductions, GEMM when
// built without BLAS). Nested parallel_for calls run inline, so kernels can call each other
// without over-subscribing the cores.
#pragma once
#include <cstdint>
#include <functional>

namespace mmgrad {

// Runs fn(chunk_begin, chunk_end) over [begin, end) split into at most num_threads() chunks
// of at least `grain` iterations. Blocks until all chunks are done; rethrows the first
// exception a chunk threw.
void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn);

// Threads used by parallel_for: MMGRAD_NUM_THREADS if set, else the hardware's count.
int num_threads();
void set_num_threads(int n);

}  // namespace mmgrad
