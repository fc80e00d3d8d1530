// The CPU backend's kernels (one file per family) and its registration.
#pragma once
#include "backends/backend.h"

namespace mmgrad::cpu {

#define MMGRAD_DECLARE_CPU_KERNEL(op, args) void op args;
MMGRAD_BACKEND_OPS(MMGRAD_DECLARE_CPU_KERNEL)
MMGRAD_BACKEND_FUSED_OPS(MMGRAD_DECLARE_CPU_KERNEL)
#undef MMGRAD_DECLARE_CPU_KERNEL

const Backend& backend();

}  // namespace mmgrad::cpu
