// Element offsets of K operands walked together in row-major order of a common shape, for
// the CUDA kernels (the GPU twin of backends/cpu/strided_loop.h).
//
// The host builds it from tensors: dims of size 1 are dropped and adjacent dims that are
// contiguous with each other in every operand are merged, so a dense tensor becomes one
// dim and a bias broadcast over rows two. The kernel turns a flat index into K offsets.
#pragma once
#include <array>
#include <cstdint>

#include "core/host_device.h"
#include "core/tensor.h"

namespace mmgrad::cuda {

constexpr int kMaxDims = 12;

template <int K>
struct Strided {
  int nd = 0;
  bool index32 = false;  // flat indices fit in 32 bits: divide in 32-bit (several times faster)
  int64_t size[kMaxDims] = {};
  int64_t stride[K][kMaxDims] = {};

  // Offsets (in elements) of flat index i for each operand.
  MMGRAD_HOST_DEVICE void offsets(int64_t i, int64_t (&off)[K]) const {
    for (int k = 0; k < K; ++k) off[k] = 0;
    if (nd == 1) {
      for (int k = 0; k < K; ++k) off[k] = i * stride[k][0];
      return;
    }
    if (index32) {
      uint32_t r = static_cast<uint32_t>(i);
      for (int d = nd - 1; d >= 0; --d) {
        const uint32_t n = static_cast<uint32_t>(size[d]);
        const uint32_t c = r % n;
        r /= n;
        for (int k = 0; k < K; ++k) off[k] += static_cast<int64_t>(c) * stride[k][d];
      }
      return;
    }
    for (int d = nd - 1; d >= 0; --d) {
      const int64_t c = i % size[d];
      i /= size[d];
      for (int k = 0; k < K; ++k) off[k] += c * stride[k][d];
    }
  }
};

// `shape` is the iteration shape; every operand has it (broadcasts are stride-0 views).
template <int K>
Strided<K> make_strided(const Shape& shape, const std::array<const Tensor*, K>& operands, const char* op) {
  Strided<K> s;
  for (size_t d = 0; d < shape.size(); ++d) {
    if (shape[d] == 1) continue;
    bool merge = s.nd > 0;
    for (int k = 0; k < K && merge; ++k)
      merge = s.stride[k][s.nd - 1] == operands[k]->strides()[d] * shape[d];
    if (merge) {
      s.size[s.nd - 1] *= shape[d];
      for (int k = 0; k < K; ++k) s.stride[k][s.nd - 1] = operands[k]->strides()[d];
      continue;
    }
    if (s.nd == kMaxDims) fail(op, "tensors with more than 12 non-mergeable dims are not supported on CUDA");
    s.size[s.nd] = shape[d];
    for (int k = 0; k < K; ++k) s.stride[k][s.nd] = operands[k]->strides()[d];
    ++s.nd;
  }
  s.index32 = numel_of(shape) < (int64_t{1} << 31);
  if (s.nd == 0) {  // a single element
    s.nd = 1;
    s.size[0] = 1;
    for (int k = 0; k < K; ++k) s.stride[k][0] = 1;
  }
  return s;
}

}  // namespace mmgrad::cuda
