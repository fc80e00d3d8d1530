// Shapes and strides: small integer vectors plus the arithmetic every layer needs
// (element counts, contiguous strides, broadcasting, dim normalisation).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mmgrad {

using Shape = std::vector<int64_t>;
constexpr int kMaxDims = 8;

int64_t numel_of(const Shape& shape);
Shape contiguous_strides(const Shape& shape);
std::string shape_str(const Shape& shape);  // "[2, 3]"

// NumPy broadcasting of two shapes; throws naming `op` if they are incompatible.
Shape broadcast_shapes(const Shape& a, const Shape& b, const char* op);

// Maps a possibly negative dim into [0, ndim); throws naming `op` if out of range.
int normalize_dim(int64_t dim, int ndim, const char* op);

// Checks that a shape has non-negative sizes and at most kMaxDims dims.
void check_shape(const Shape& shape, const char* op);

}  // namespace mmgrad
