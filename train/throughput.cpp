#include "train/throughput.h"

#include <algorithm>
#include <chrono>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/host_allocator.h"
#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/allocator.h"
#include "backends/cuda/cuda.h"
#endif

namespace mmgrad::train {

double measure_matmul_ceiling_gflops(Device device) {
  NoGradGuard no_grad;
  constexpr int64_t n = 1024;
  Generator gen(7);
  const Tensor a = randn({n, n}, DType::F32, device, &gen), b = randn({n, n}, DType::F32, device, &gen);
  double best = 0;
  for (int i = 0; i < 4; ++i) {  // the first warms up caches, threads and kernels
    const auto t0 = std::chrono::steady_clock::now();
    Tensor c = matmul(a, b);
#ifdef MMGRAD_HAVE_CUDA
    if (device.type == DeviceType::CUDA) cuda::synchronize();
#endif
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) best = std::max(best, 2.0 * n * n * n / s / 1e9);
  }
  return best;
}

size_t peak_tensor_memory(Device device) {
#ifdef MMGRAD_HAVE_CUDA
  if (device.type == DeviceType::CUDA) return cuda::device_memory_stats().peak_in_use;
#endif
  (void)device;
  return host_memory_stats().peak_in_use;
}

}  // namespace mmgrad::train
