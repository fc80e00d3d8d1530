// Shared helpers for bench/ programs: median timing and the header line every benchmark
// prints (which BLAS kernel and how many threads the figures were measured with).
#pragma once
#include <algorithm>
#include <chrono>
#include <functional>
#include <vector>

#include <fmt/format.h>

#include "core/blas_info.h"
#include "core/parallel.h"

namespace mmgrad::bench {

// Median wall time of `fn` in milliseconds over `reps` runs after `warmup` runs.
inline double median_ms(const std::function<void()>& fn, int reps = 7, int warmup = 2) {
  for (int i = 0; i < warmup; ++i) fn();
  std::vector<double> t;
  for (int i = 0; i < reps; ++i) {
    auto s = std::chrono::steady_clock::now();
    fn();
    t.push_back(std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - s).count());
  }
  std::sort(t.begin(), t.end());
  return t[t.size() / 2];
}

inline void print_header(const char* title) {
  fmt::print("# {}\n# {}; mmgrad threads: {}\n", title, blas_summary(), num_threads());
}

}  // namespace mmgrad::bench
