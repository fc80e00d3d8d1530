// Floating-point operations done by matmuls (forward and backward: 2 M N K per product,
// batches included), counted at the one place every matmul is dispatched, and by the fused
// attention for the products it does without the matmul op. A step's count
// divided by its time is the achieved FLOP/s that MFU figures compare with the device's
// measured ceiling (train/throughput.h). Other ops are a small share of a transformer's
// arithmetic and are not counted.
#pragma once
#include <cstdint>

namespace mmgrad {

uint64_t matmul_flops();  // since the start of the process, every thread

namespace detail {
void add_matmul_flops(uint64_t flops);
}

}  // namespace mmgrad
