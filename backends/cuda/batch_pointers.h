// Address tables for pointer-array batched GEMMs (batch_pointers.cu; used by matmul.cpp).
#pragma once
#include <array>
#include <cstdint>

#include "backends/cuda/strided.h"

namespace mmgrad::cuda {

// tables: a device buffer of 3 * count pointers (any dtype of 8-byte elements), filled with
// operand k's matrix address for batch element i at [k * count + i]: bases[k] plus walk's
// offset k of flat batch index i (in elements of element_bytes).
void fill_batch_pointer_tables(const Tensor& tables, const Strided<3>& walk, int64_t count,
                               const std::array<const void*, 3>& bases, int64_t element_bytes);

}  // namespace mmgrad::cuda
