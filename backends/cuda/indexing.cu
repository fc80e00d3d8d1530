// index_select / index_add (embedding lookup and its backward) and gather / scatter_add,
// on contiguous operands seen as [outer, dim, inner] (as on the CPU). An index out of range
// is recorded and raised at the next synchronisation (context.h); the bad element is
// skipped (reads give 0), never read or written out of bounds.
//
// The scatter-adds use atomics: with repeated indices the order of the additions, and so
// the last bits of a float sum, can differ from run to run. MMGRAD_DETERMINISTIC=1 in the
// environment switches them to one thread per output column walking the indices in order
// (slower with many indices, identical results every run).
#include <cstdlib>
#include <string>

#include "backends/cuda/kernels.h"
#include "backends/index_split.h"
#include "backends/cuda/launch.cuh"

namespace mmgrad::cuda {
namespace {


bool deterministic() {
  static const bool on = [] {
    const char* v = std::getenv("MMGRAD_DETERMINISTIC");
    return v && std::string(v) == "1";
  }();
  return on;
}

}  // namespace

namespace {

template <typename T>
void index_select_typed(const Tensor& out, const Tensor& in, const IndexSplit s, const Tensor& index) {
  const int64_t n_idx = index.numel();
  const int64_t* idx = static_cast<const int64_t*>(index.raw_data());
  int64_t* err = device_error_record();
  const T* src = static_cast<const T*>(in.raw_data());
  T* dst = static_cast<T*>(out.raw_data());
  const T zero = convert_on_host<T>(0);
  launch_n(out.numel(), "index_select", [=] __device__(int64_t p) {
    const int64_t c = p % s.inner, j = (p / s.inner) % n_idx, o = p / (s.inner * n_idx);
    const int64_t i = idx[j];
    if (i < 0 || i >= s.size) {
      record_device_error(err, kIndexOutOfRange, kOpIndexSelect, i, s.size);
      dst[p] = zero;
      return;
    }
    dst[p] = src[(o * s.size + i) * s.inner + c];
  });
}

template <typename T>
void index_add_typed(const Tensor& out, const IndexSplit s, const Tensor& index, const Tensor& src) {
  const int64_t n_idx = index.numel();
  const int64_t* idx = static_cast<const int64_t*>(index.raw_data());
  int64_t* err = device_error_record();
  const T* sp = static_cast<const T*>(src.raw_data());
  T* dp = static_cast<T*>(out.raw_data());
  if (deterministic()) {
    launch_n(s.outer * s.inner, "index_add", [=] __device__(int64_t line) {
      const int64_t o = line / s.inner, c = line % s.inner;
      for (int64_t j = 0; j < n_idx; ++j) {
        const int64_t i = idx[j];
        if (i < 0 || i >= s.size) {
          record_device_error(err, kIndexOutOfRange, kOpIndexAdd, i, s.size);
          continue;
        }
        dp[(o * s.size + i) * s.inner + c] += sp[(o * n_idx + j) * s.inner + c];
      }
    });
    return;
  }
  launch_n(s.outer * n_idx * s.inner, "index_add", [=] __device__(int64_t p) {
    const int64_t c = p % s.inner, j = (p / s.inner) % n_idx, o = p / (s.inner * n_idx);
    const int64_t i = idx[j];
    if (i < 0 || i >= s.size) {
      record_device_error(err, kIndexOutOfRange, kOpIndexAdd, i, s.size);
      return;
    }
    atomic_add(dp + (o * s.size + i) * s.inner + c, sp[p]);
  });
}

template <typename T>
void gather_typed(const Tensor& out, const Tensor& in, const IndexSplit s, const Tensor& index, int64_t n_idx) {
  const int64_t* idx = static_cast<const int64_t*>(index.raw_data());
  int64_t* err = device_error_record();
  const T* src = static_cast<const T*>(in.raw_data());
  T* dst = static_cast<T*>(out.raw_data());
  const T zero = convert_on_host<T>(0);
  launch_n(out.numel(), "gather", [=] __device__(int64_t p) {
    const int64_t c = p % s.inner, o = p / (s.inner * n_idx);
    const int64_t k = idx[p];
    if (k < 0 || k >= s.size) {
      record_device_error(err, kIndexOutOfRange, kOpGather, k, s.size);
      dst[p] = zero;
      return;
    }
    dst[p] = src[(o * s.size + k) * s.inner + c];
  });
}

template <typename T>
__device__ inline void scatter_one(const int64_t* idx, const T* sp, T* dp, IndexSplit s, int64_t n_idx, int64_t p,
                                   bool atomic, int64_t* err) {
  const int64_t c = p % s.inner, o = p / (s.inner * n_idx);
  const int64_t k = idx[p];
  if (k < 0 || k >= s.size) {
    record_device_error(err, kIndexOutOfRange, kOpScatterAdd, k, s.size);
    return;
  }
  T* d = dp + (o * s.size + k) * s.inner + c;
  if (atomic)
    atomic_add(d, sp[p]);
  else
    *d += sp[p];
}

template <typename T>
void scatter_add_typed(const Tensor& out, const IndexSplit s, const Tensor& index, const Tensor& src, int64_t n_idx) {
  const int64_t* idx = static_cast<const int64_t*>(index.raw_data());
  int64_t* err = device_error_record();
  const T* sp = static_cast<const T*>(src.raw_data());
  T* dp = static_cast<T*>(out.raw_data());
  if (deterministic()) {
    // Writes along dim stay within one (outer, inner) line: one thread per line.
    launch_n(s.outer * s.inner, "scatter_add", [=] __device__(int64_t line) {
      const int64_t o = line / s.inner, c = line % s.inner;
      for (int64_t j = 0; j < n_idx; ++j) scatter_one(idx, sp, dp, s, n_idx, (o * n_idx + j) * s.inner + c, false, err);
    });
    return;
  }
  launch_n(index.numel(), "scatter_add",
           [=] __device__(int64_t p) { scatter_one(idx, sp, dp, s, n_idx, p, true, err); });
}

}  // namespace

void index_select(const Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  const IndexSplit s = split_at(in.shape(), dim);
  dispatch_all(in.dtype(), [&](auto tag) { index_select_typed<decltype(tag)>(out, in, s, index); });
}

void index_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const IndexSplit s = split_at(out.shape(), dim);
  dispatch_numeric(out.dtype(), "index_add", [&](auto tag) { index_add_typed<decltype(tag)>(out, s, index, src); });
}

void gather(const Tensor& out, const Tensor& in, int dim, const Tensor& index) {
  const IndexSplit s = split_at(in.shape(), dim);
  const int64_t n_idx = index.shape()[dim];
  dispatch_all(in.dtype(), [&](auto tag) { gather_typed<decltype(tag)>(out, in, s, index, n_idx); });
}

void scatter_add(const Tensor& out, int dim, const Tensor& index, const Tensor& src) {
  const IndexSplit s = split_at(out.shape(), dim);
  const int64_t n_idx = index.shape()[dim];
  dispatch_numeric(out.dtype(), "scatter_add",
                   [&](auto tag) { scatter_add_typed<decltype(tag)>(out, s, index, src, n_idx); });
}

}  // namespace mmgrad::cuda
