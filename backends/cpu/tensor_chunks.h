// One parallel_for over the chunks of many tensors (the multi-tensor kernels: sum_squares,
// adamw_update_many). Most of a model's parameters are small, so one parallel dispatch per
// tensor would cost more than its arithmetic; here the tensors are cut into fixed chunks and
// all chunks of all tensors are one index space.
#pragma once
#include <algorithm>
#include <cstdint>
#include <vector>

#include "core/parallel.h"

namespace mmgrad::cpu {

// first_chunk[t] .. first_chunk[t + 1] are tensor t's chunks, of `chunk` elements (the last
// one shorter; an empty tensor has none).
template <typename Sizes>
std::vector<int64_t> first_chunks(const Sizes& numel_of_tensor, size_t tensors, int64_t chunk) {
  std::vector<int64_t> first(tensors + 1, 0);
  for (size_t t = 0; t < tensors; ++t) first[t + 1] = first[t] + (numel_of_tensor(t) + chunk - 1) / chunk;
  return first;
}

// fn(t, c, begin, end) for every chunk c of every tensor t (elements [begin, end) of t),
// chunks spread over the thread pool. Which thread runs a chunk varies; what each chunk
// computes does not, so results that are combined per chunk in order are deterministic.
template <typename Sizes, typename Fn>
void for_each_chunk(const std::vector<int64_t>& first, const Sizes& numel_of_tensor, int64_t chunk, Fn&& fn) {
  parallel_for(0, first.back(), 1, [&](int64_t lo, int64_t hi) {
    size_t t = static_cast<size_t>(std::upper_bound(first.begin(), first.end(), lo) - first.begin() - 1);
    for (int64_t c = lo; c < hi; ++c) {
      while (c >= first[t + 1]) ++t;
      const int64_t begin = (c - first[t]) * chunk;
      fn(t, c, begin, std::min(begin + chunk, numel_of_tensor(t)));
    }
  });
}

}  // namespace mmgrad::cpu
