// index_select / index_add (embedding lookup and its scatter-add backward) and
// gather / scatter_add. Operands are contiguous (the autograd layer makes them so) and seen
// as [outer, dim, inner]. Every index is bounds-checked: bad input is an error, never an
// out-of-bounds read. Scatter-adds split work so that no two threads write one element,
// which also keeps them deterministic.
#include <fmt/format.h>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/index_split.h"

namespace mmgrad::cpu {
namespace {


inline int64_t checked(int64_t i, int64_t size, const char* op) {
  if (i < 0 || i >= size)
    fail(op, fmt::format("index {} is out of range for a dimension of size {}", i, size));
  return i;
}

constexpr int64_t kInnerBlock = 64;

}  // namespace

void index_select(const Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  IndexSplit s = split_at(in.shape(), dim);
  const int64_t n_idx = index.numel();
  const int64_t* idx = index.data_ptr<int64_t>();
  dispatch_all(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(in.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    parallel_for(0, s.outer * n_idx, std::max<int64_t>(1, 4096 / std::max<int64_t>(s.inner, 1)),
                 [&](int64_t lo, int64_t hi) {
                   for (int64_t p = lo; p < hi; ++p) {
                     int64_t o = p / n_idx, j = p % n_idx;
                     int64_t i = checked(idx[j], s.size, "index_select");
                     std::copy_n(src + (o * s.size + i) * s.inner, s.inner, dst + p * s.inner);
                   }
                 });
  });
}

void index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  IndexSplit s = split_at(out.shape(), dim);
  const int64_t n_idx = index.numel();
  const int64_t* idx = index.data_ptr<int64_t>();
  for (int64_t j = 0; j < n_idx; ++j) checked(idx[j], s.size, "index_add");
  const int64_t blocks = (s.inner + kInnerBlock - 1) / kInnerBlock;
  dispatch_numeric(out.dtype(), "index_add", [&](auto tag) {
    using T = decltype(tag);
    const T* sp = static_cast<const T*>(src.raw_data());
    T* dp = static_cast<T*>(out.raw_data());
    // Parallel over (outer, inner block): each task owns its output columns.
    parallel_for(0, s.outer * blocks, 1, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        int64_t o = p / blocks, c0 = (p % blocks) * kInnerBlock;
        int64_t c1 = std::min(s.inner, c0 + kInnerBlock);
        for (int64_t j = 0; j < n_idx; ++j) {
          T* d = dp + (o * s.size + idx[j]) * s.inner;
          const T* r = sp + (o * n_idx + j) * s.inner;
          for (int64_t c = c0; c < c1; ++c) d[c] += r[c];
        }
      }
    });
  });
}

void gather(const Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  IndexSplit s = split_at(in.shape(), dim);
  const int64_t n_idx = index.shape()[dim];
  const int64_t* idx = index.data_ptr<int64_t>();
  dispatch_all(in.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T* src = static_cast<const T*>(in.raw_data());
    T* dst = static_cast<T*>(out.raw_data());
    parallel_for(0, out.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t p = lo; p < hi; ++p) {
        int64_t i = p % s.inner, j = (p / s.inner) % n_idx, o = p / (s.inner * n_idx);
        (void)j;
        int64_t k = checked(idx[p], s.size, "gather");
        dst[p] = src[(o * s.size + k) * s.inner + i];
      }
    });
  });
}

void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  IndexSplit s = split_at(out.shape(), dim);
  const int64_t n_idx = index.shape()[dim];
  const int64_t* idx = index.data_ptr<int64_t>();
  for (int64_t p = 0; p < index.numel(); ++p) checked(idx[p], s.size, "scatter_add");
  dispatch_numeric(out.dtype(), "scatter_add", [&](auto tag) {
    using T = decltype(tag);
    const T* sp = static_cast<const T*>(src.raw_data());
    T* dp = static_cast<T*>(out.raw_data());
    // Writes along `dim` stay within one (outer, inner) line: lines are the parallel unit.
    parallel_for(0, s.outer * s.inner, 1024, [&](int64_t lo, int64_t hi) {
      for (int64_t line = lo; line < hi; ++line) {
        int64_t o = line / s.inner, i = line % s.inner;
        for (int64_t j = 0; j < n_idx; ++j) {
          int64_t p = (o * n_idx + j) * s.inner + i;
          dp[(o * s.size + idx[p]) * s.inner + i] += sp[p];
        }
      }
    });
  });
}

}  // namespace mmgrad::cpu
