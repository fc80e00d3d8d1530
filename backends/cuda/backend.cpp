// The CUDA backend's op table, registered when a GPU is there.
#include <cuda_runtime.h>
#include <fmt/format.h>

#include "backends/cuda/context.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"

namespace mmgrad::cuda {
namespace {

std::string& reason() {
  static std::string r;
  return r;
}

const Backend* make_backend() {
  int n = 0;
  cudaError_t err = cudaGetDeviceCount(&n);
  if (err != cudaSuccess || n == 0) {
    cudaGetLastError();
    reason() = err != cudaSuccess ? fmt::format("no CUDA device ({})", cudaGetErrorString(err))
                                  : std::string("no CUDA device");
    return nullptr;
  }
  static Backend b = [] {
    Backend t;
    t.name = "cuda";
#define MMGRAD_FILL_SLOT(op, args) t.op = &::mmgrad::cuda::op;
    MMGRAD_BACKEND_OPS(MMGRAD_FILL_SLOT)
#undef MMGRAD_FILL_SLOT
    t.attention = &::mmgrad::cuda::attention;
    t.attention_backward = &::mmgrad::cuda::attention_backward;
    t.sum_squares = &::mmgrad::cuda::sum_squares;
    t.adamw_update_many = &::mmgrad::cuda::adamw_update_many;
    t.matmul_bias = &::mmgrad::cuda::matmul_bias;
    return t;
  }();
  return &b;
}

}  // namespace

const Backend* backend_if_available() {
  static const Backend* b = make_backend();
  return b;
}

bool available() { return backend_if_available() != nullptr; }

const std::string& unavailable_reason() {
  backend_if_available();
  return reason();
}

}  // namespace mmgrad::cuda
