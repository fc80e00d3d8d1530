// Walking N operands that share one index space but have their own strides.
//
// Dims are first coalesced (adjacent dims that are contiguous for every operand merge into
// one), so a contiguous or broadcast-by-rows case becomes a single long inner loop that the
// compiler can vectorise. The outer index space is split across the thread pool.
#pragma once
#include <algorithm>
#include <array>
#include <cstdint>

#include "core/parallel.h"
#include "core/tensor.h"

namespace mmgrad::cpu {

// Where batch element i of t starts, in elements from t's first element: its batch is every
// dim but the last two (the matrices of a batched matmul or attention), counted row-major.
inline int64_t batch_offset(const Tensor& t, int64_t i) {
  int64_t offset = 0;
  for (int d = t.dim() - 3; d >= 0; --d) {
    const int64_t size = t.shape()[d];
    offset += (i % size) * t.strides()[d];
    i /= size;
  }
  return offset;
}

template <size_t N>
class StridedLoop {
 public:
  // All operands must have `shape` (already broadcast: stride 0 on broadcast dims).
  StridedLoop(const Shape& shape, const std::array<const Tensor*, N>& ops) {
    for (size_t k = 0; k < N; ++k) {
      base_[k] = static_cast<char*>(ops[k]->raw_data());
      elem_[k] = static_cast<int64_t>(ops[k]->element_size());
    }
    // Drop size-1 dims, then merge dim d into d-1 where every operand allows it.
    for (size_t d = 0; d < shape.size(); ++d) {
      if (shape[d] == 1) continue;
      std::array<int64_t, N> st;
      for (size_t k = 0; k < N; ++k) st[k] = ops[k]->strides()[d] * elem_[k];
      if (!sizes_.empty()) {
        bool mergeable = true;
        for (size_t k = 0; k < N; ++k)
          if (strides_.back()[k] != st[k] * shape[d]) mergeable = false;
        if (mergeable) {
          sizes_.back() *= shape[d];
          strides_.back() = st;
          continue;
        }
      }
      sizes_.push_back(shape[d]);
      strides_.push_back(st);
    }
    if (sizes_.empty()) {  // a scalar: one element
      sizes_.push_back(1);
      strides_.push_back({});
    }
  }

  // inner(ptrs, strides_in_bytes, n) processes n consecutive elements of the innermost dim.
  // Rows are split into blocks too when there are too few rows to keep every thread busy
  // (a contiguous tensor coalesces into a single row).
  template <typename F>
  void run(F&& inner, int64_t min_elements_per_task = 1 << 15) const {
    const int64_t n_inner = sizes_.back();
    int64_t n_outer = 1;
    for (size_t d = 0; d + 1 < sizes_.size(); ++d) n_outer *= sizes_[d];
    const std::array<int64_t, N>& inner_strides = strides_.back();
    const int64_t chunks = max_chunks();  // as many blocks as parallel_for may cut the job into
    int64_t blocks_per_row = 1;
    if (n_outer < chunks && n_inner >= 2 * min_elements_per_task)
      blocks_per_row = std::min<int64_t>(n_inner / min_elements_per_task, chunks);
    const int64_t block = (n_inner + blocks_per_row - 1) / blocks_per_row;
    const int64_t grain = std::max<int64_t>(1, min_elements_per_task / std::max<int64_t>(block, 1));
    parallel_for(0, n_outer * blocks_per_row, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t task = lo; task < hi; ++task) {
        const int64_t o = task / blocks_per_row, start = (task % blocks_per_row) * block;
        std::array<char*, N> p = base_;
        int64_t rest = o;
        for (int d = static_cast<int>(sizes_.size()) - 2; d >= 0; --d) {
          int64_t i = rest % sizes_[d];
          rest /= sizes_[d];
          for (size_t k = 0; k < N; ++k) p[k] += i * strides_[d][k];
        }
        for (size_t k = 0; k < N; ++k) p[k] += start * inner_strides[k];
        inner(p, inner_strides, std::min(block, n_inner - start));
      }
    });
  }

  // True when the inner dim is dense for operand k (stride == element size).
  bool inner_contiguous(size_t k) const { return strides_.back()[k] == elem_[k]; }

 private:
  std::array<char*, N> base_{};
  std::array<int64_t, N> elem_{};
  std::vector<int64_t> sizes_;
  std::vector<std::array<int64_t, N>> strides_;
};

}  // namespace mmgrad::cpu
