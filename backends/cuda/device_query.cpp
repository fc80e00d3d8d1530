#include "backends/cuda/device_query.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

namespace mmgrad::cuda {

int device_count() {
  int n = 0;
  if (cudaGetDeviceCount(&n) != cudaSuccess) {
    cudaGetLastError();  // clear the sticky error so later calls are not affected
    return 0;
  }
  return n;
}

std::string describe_devices() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess) {
    cudaGetLastError();
    return fmt::format("CUDA: no device ({})", cudaGetErrorString(err));
  }
  std::string out = fmt::format("CUDA: {} device(s)", n);
  for (int i = 0; i < n; ++i) {
    cudaDeviceProp p{};
    if (cudaGetDeviceProperties(&p, i) != cudaSuccess) continue;
    out += fmt::format("\n  cuda:{} {} (sm_{}{}, {:.1f} GiB)", i, p.name, p.major, p.minor,
                       static_cast<double>(p.totalGlobalMem) / (1 << 30));
  }
  return out;
}

}  // namespace mmgrad::cuda
