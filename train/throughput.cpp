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
  // Best of at least 8 timed runs over at least 0.3 s: on a small CPU the loader's workers
  // render the first batches while this runs, and the best of 3 read 82-122 GFLOP/s on the
  // same 2 cores from one start to the next (step lines then claimed an MFU of 0.99). A slow
  // device (a scalar build) stops after 2 s of timed runs.
  double best = 0, timed_s = 0;
  // The first run warms up caches, threads and kernels and is not timed.
  for (int i = 0; i < 100 && (timed_s < 0.3 || (i < 9 && timed_s < 2.0)); ++i) {
    const auto t0 = std::chrono::steady_clock::now();
    Tensor c = matmul(a, b);
#ifdef MMGRAD_HAVE_CUDA
    if (device.type == DeviceType::CUDA) cuda::synchronize();
#endif
    const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    if (i > 0) {
      best = std::max(best, 2.0 * n * n * n / s / 1e9);
      timed_s += s;
    }
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
