// Which CUDA devices this machine has, through the CUDA runtime. Compiled only when the
// build found the CUDA toolkit (cuda=auto|enabled); the CUDA kernels build on this.
#pragma once
#include <string>

namespace mmgrad::cuda {

// Number of usable CUDA devices; 0 when there is no driver or no GPU (never throws).
int device_count();
// One line per device ("cuda:0 NVIDIA H100 (sm_90, 79.1 GiB)"), or why there is none.
std::string describe_devices();

}  // namespace mmgrad::cuda
