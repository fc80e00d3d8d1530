// The CUDA backend's shared state: the device, the one stream every kernel runs on, the
// cuBLAS handle, error checking, and the device-side error record.
//
// One stream: kernels run in issue order, so the caching allocator can hand a freed block to
// the next op at once (as PyTorch does per stream) and host code never has to synchronise
// except where it reads results back.
//
// Kernels that find bad input (an index out of range, an integer division by zero) cannot
// throw. They write the first such problem to a small device-side record and skip the bad
// access; the next synchronisation (a copy to the host, item(), synchronize()) raises it as
// an mmgrad::Error naming the op and the value. This is the asynchronous error model of
// CUDA itself: the error is never lost, but it surfaces at the next read-back.
#pragma once
#include <cuda_runtime.h>

#include <cstdint>
#include <string>

#include "backends/cuda/cuda.h"

namespace mmgrad::cuda {

// Throws mmgrad::Error "<op>: CUDA error: <text>" unless err is cudaSuccess.
void check(cudaError_t err, const char* op);
// After a kernel launch: reports launch failures (bad configuration) at once.
void check_launch(const char* op);

// Makes `device` current and initialises the backend's state on first use.
void set_device(int device);
cudaStream_t stream();
void* cublas_handle();  // cublasHandle_t, kept opaque here so kernels need no cuBLAS header

// What a kernel records when it meets bad input. Codes index device_error_names.
enum DeviceErrorCode : int64_t {
  kNoError = 0,
  kIndexOutOfRange = 1,
  kTargetOutOfRange = 2,
  kIntegerDivisionByZero = 3,
  kAssertionFailed = 4,  // value: the assert_all message id (backend.h)
};
enum DeviceErrorOp : int64_t {
  kOpIndexSelect = 1, kOpIndexAdd, kOpGather, kOpScatterAdd, kOpCrossEntropy, kOpDiv, kOpAssert,
};
// Initialises what a CUDA graph capture must not create lazily (the cuBLAS handle and its
// workspace); graph.cpp calls it before capturing.
void prepare_for_capture();

// While alive, lets this thread make calls a stream capture would otherwise refuse and
// abort on (cudaMalloc: the allocator grows a graph's pool while recording, as PyTorch's
// does; the allocation itself is not part of the graph, which is what the pool wants).
class RelaxedCaptureMode {
 public:
  RelaxedCaptureMode();
  ~RelaxedCaptureMode();
  RelaxedCaptureMode(const RelaxedCaptureMode&) = delete;
  RelaxedCaptureMode& operator=(const RelaxedCaptureMode&) = delete;

 private:
  cudaStreamCaptureMode previous_;
};

// Device pointer to int64[4]: code, op, value, bound. Zero while nothing went wrong.
int64_t* device_error_record();
// Reads the record (after a synchronisation) and throws if a kernel wrote to it.
void raise_device_error();

// Brackets one kernel (or cuBLAS call, or copy) with CUDA events when profiling (cuda.h);
// free when it is off.
class ProfileScope {
 public:
  explicit ProfileScope(const char* name);
  ~ProfileScope();
  ProfileScope(const ProfileScope&) = delete;
  ProfileScope& operator=(const ProfileScope&) = delete;

 private:
  const char* name_ = nullptr;
  cudaEvent_t start_ = nullptr;
};

}  // namespace mmgrad::cuda
