// A contiguous tensor seen as [outer, size, inner] around one dim: the layout every
// indexing kernel (index_select/add, gather, scatter_add) works in, on the CPU and on CUDA.
#pragma once
#include <cstdint>

#include "core/shape.h"

namespace mmgrad {

struct IndexSplit {
  int64_t outer = 1, size = 1, inner = 1;
};

inline IndexSplit split_at(const Shape& shape, int dim) {
  IndexSplit s;
  for (int d = 0; d < dim; ++d) s.outer *= shape[d];
  s.size = shape[dim];
  for (size_t d = dim + 1; d < shape.size(); ++d) s.inner *= shape[d];
  return s;
}

}  // namespace mmgrad
