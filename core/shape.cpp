#include "core/shape.h"

#include <fmt/format.h>
#include <fmt/ranges.h>

#include <cstdint>

#include "core/error.h"

namespace mmgrad {

int64_t numel_of(const Shape& shape) {
  int64_t n = 1;
  for (int64_t s : shape) n *= s;
  return n;
}

Shape contiguous_strides(const Shape& shape) {
  Shape st(shape.size());
  int64_t acc = 1;
  for (int i = static_cast<int>(shape.size()) - 1; i >= 0; --i) {
    st[i] = acc;
    acc *= std::max<int64_t>(shape[i], 1);
  }
  return st;
}

std::string shape_str(const Shape& shape) { return fmt::format("[{}]", fmt::join(shape, ", ")); }

Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op) {
  size_t n = std::max(a.size(), b.size());
  Shape out(n);
  for (size_t i = 0; i < n; ++i) {
    int64_t da = i < n - a.size() ? 1 : a[i - (n - a.size())];
    int64_t db = i < n - b.size() ? 1 : b[i - (n - b.size())];
    if (da != db && da != 1 && db != 1)
      fail(op, fmt::format("shapes {} and {} cannot be broadcast together (dim {}: {} vs {})",
                           shape_str(a), shape_str(b), i, da, db));
    out[i] = da == 1 ? db : da;
  }
  return out;
}

int normalize_dim(int64_t dim, int ndim, const char* op) {
  int64_t d = dim < 0 ? dim + ndim : dim;
  if (d < 0 || d >= ndim)
    fail(op, fmt::format("dim {} is out of range for a tensor with {} dims", dim, ndim));
  return static_cast<int>(d);
}

void check_shape(const Shape& shape, const char* op) {
  if (shape.size() > static_cast<size_t>(kMaxDims))
    fail(op, fmt::format("shape {} has {} dims; at most {} are supported", shape_str(shape),
                         shape.size(), kMaxDims));
  int64_t total = 1;
  for (int64_t s : shape) {
    if (s < 0) fail(op, fmt::format("shape {} has a negative size", shape_str(shape)));
    // Element and byte counts must fit in 64 bits (8 bytes per element at most).
    if (__builtin_mul_overflow(total, s, &total) || total > (INT64_MAX >> 3))
      fail(op, fmt::format("shape {} has too many elements", shape_str(shape)));
  }
}

}  // namespace mmgrad
