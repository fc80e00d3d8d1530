#include "backends/cuda/context.h"

#include <cublas_v2.h>
#include <fmt/format.h>

#include <cstdlib>
#include <mutex>

#include "core/error.h"

namespace mmgrad::cuda {
namespace {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  int64_t* error_record = nullptr;
  bool tf32 = false;
};

Context& context() {
  static Context ctx;
  static std::once_flag once;
  std::call_once(once, [] {
    check(cudaSetDevice(ctx.device), "cuda init");
    check(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking), "cuda init");
    if (cublasCreate(&ctx.cublas) != CUBLAS_STATUS_SUCCESS) fail("cuda init", "cublasCreate failed");
    cublasSetStream(ctx.cublas, ctx.stream);
    check(cudaMalloc(&ctx.error_record, 4 * sizeof(int64_t)), "cuda init");
    check(cudaMemset(ctx.error_record, 0, 4 * sizeof(int64_t)), "cuda init");
    const char* tf32 = std::getenv("MMGRAD_CUDA_TF32");
    ctx.tf32 = tf32 && std::string(tf32) == "1";
    cublasSetMathMode(ctx.cublas, ctx.tf32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
  });
  return ctx;
}

const char* op_name(int64_t op) {
  switch (op) {
    case kOpIndexSelect: return "index_select";
    case kOpIndexAdd: return "index_add";
    case kOpGather: return "gather";
    case kOpScatterAdd: return "scatter_add";
    case kOpCrossEntropy: return "cross_entropy";
    case kOpDiv: return "div";
  }
  return "a CUDA kernel";
}

}  // namespace

void check(cudaError_t err, const char* op) {
  if (err == cudaSuccess) return;
  cudaGetLastError();  // clear a non-sticky error so the next call starts clean
  fail(op, fmt::format("CUDA error: {} ({})", cudaGetErrorString(err), cudaGetErrorName(err)));
}

void check_launch(const char* op) { check(cudaGetLastError(), op); }

void set_device(int device) {
  if (device != 0)
    fail("cuda", fmt::format("cuda:{} requested; this build drives one GPU per process (cuda:0)", device));
  context();
}

cudaStream_t stream() { return context().stream; }
void* cublas_handle() { return context().cublas; }

void synchronize() {
  check(cudaStreamSynchronize(stream()), "synchronize");
  raise_device_error();
}

int64_t* device_error_record() { return context().error_record; }

void raise_device_error() {
  int64_t rec[4] = {};
  check(cudaMemcpy(rec, context().error_record, sizeof(rec), cudaMemcpyDeviceToHost), "synchronize");
  if (rec[0] == kNoError) return;
  check(cudaMemset(context().error_record, 0, sizeof(rec)), "synchronize");  // report once
  const char* op = op_name(rec[1]);
  switch (rec[0]) {
    case kIndexOutOfRange:
      fail(op, fmt::format("index {} is out of range for a dimension of size {} (found on cuda:0; "
                           "reported at the next synchronisation)",
                           rec[2], rec[3]));
    case kTargetOutOfRange:
      fail(op, fmt::format("target {} is out of range for {} classes and is not ignore_index "
                           "(found on cuda:0; reported at the next synchronisation)",
                           rec[2], rec[3]));
    case kIntegerDivisionByZero:
      fail(op, "integer division by zero (found on cuda:0; reported at the next synchronisation)");
  }
  fail(op, fmt::format("device-side error code {}", rec[0]));
}

void set_allow_tf32(bool on) {
  Context& ctx = context();
  ctx.tf32 = on;
  cublasSetMathMode(ctx.cublas, on ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH);
}
bool allow_tf32() { return context().tf32; }

}  // namespace mmgrad::cuda
