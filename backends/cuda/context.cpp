#include "backends/cuda/context.h"

#include <cublas_v2.h>
#include <fmt/format.h>

#include <algorithm>
#include <cstdlib>
#include <map>
#include <mutex>
#include <vector>

#include "backends/backend.h"
#include "backends/cuda/graph.h"
#include "core/error.h"

namespace mmgrad::cuda {
namespace {

struct Context {
  int device = 0;
  cudaStream_t stream = nullptr;
  cublasHandle_t cublas = nullptr;
  int64_t* error_record = nullptr;
  void* cublas_workspace = nullptr;
  MatmulPrecision precision = MatmulPrecision::F32;
};
constexpr size_t kCublasWorkspaceBytes = size_t{32} << 20;

cublasMath_t math_mode(MatmulPrecision p) {
  return p == MatmulPrecision::TF32 ? CUBLAS_TF32_TENSOR_OP_MATH : CUBLAS_DEFAULT_MATH;
}

Context& context() {
  static Context ctx;
  static std::once_flag once;
  std::call_once(once, [] {
    check(cudaSetDevice(ctx.device), "cuda init");
    check(cudaStreamCreateWithFlags(&ctx.stream, cudaStreamNonBlocking), "cuda init");
    if (cublasCreate(&ctx.cublas) != CUBLAS_STATUS_SUCCESS) fail("cuda init", "cublasCreate failed");
    cublasSetStream(ctx.cublas, ctx.stream);
    // A workspace of our own: cuBLAS then never allocates while it runs, which a CUDA graph
    // capture requires (32 MiB: what NVIDIA advises for Hopper).
    check(cudaMalloc(&ctx.cublas_workspace, kCublasWorkspaceBytes), "cuda init");
    if (cublasSetWorkspace(ctx.cublas, ctx.cublas_workspace, kCublasWorkspaceBytes) != CUBLAS_STATUS_SUCCESS)
      fail("cuda init", "cublasSetWorkspace failed");
    check(cudaMalloc(&ctx.error_record, 4 * sizeof(int64_t)), "cuda init");
    check(cudaMemset(ctx.error_record, 0, 4 * sizeof(int64_t)), "cuda init");
    if (const char* p = std::getenv("MMGRAD_CUDA_MATMUL")) ctx.precision = parse_matmul_precision(p);
    cublasSetMathMode(ctx.cublas, math_mode(ctx.precision));
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
  if (capturing())
    fail("synchronize", "waiting for the GPU inside a CUDA graph capture (the recorded work has not run; read "
                        "results after a replay)");
  check(cudaStreamSynchronize(stream()), "synchronize");
  raise_device_error();
}

int64_t* device_error_record() { return context().error_record; }

void prepare_for_capture() { context(); }

RelaxedCaptureMode::RelaxedCaptureMode() : previous_(cudaStreamCaptureModeRelaxed) {
  cudaThreadExchangeStreamCaptureMode(&previous_);
}
RelaxedCaptureMode::~RelaxedCaptureMode() { cudaThreadExchangeStreamCaptureMode(&previous_); }

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
    case kAssertionFailed: {
      auto [check_op, message] = assert_message(rec[2]);
      fail(check_op, message + " (found on cuda:0; reported at the next synchronisation)");
    }
  }
  fail(op, fmt::format("device-side error code {}", rec[0]));
}

void set_matmul_precision(MatmulPrecision p) {
  Context& ctx = context();
  ctx.precision = p;
  cublasSetMathMode(ctx.cublas, math_mode(p));
}
MatmulPrecision matmul_precision() { return context().precision; }

MatmulPrecision parse_matmul_precision(const std::string& name) {
  if (name == "f32") return MatmulPrecision::F32;
  if (name == "tf32") return MatmulPrecision::TF32;
  if (name == "bf16") return MatmulPrecision::BF16;
  fail("matmul_precision", "unknown matmul precision '" + name + "' (f32, tf32 or bf16)");
}

const char* matmul_precision_name(MatmulPrecision p) {
  switch (p) {
    case MatmulPrecision::F32: return "f32";
    case MatmulPrecision::TF32: return "tf32";
    case MatmulPrecision::BF16: return "bf16";
  }
  return "?";
}

// ---- the kernel profile
namespace {
struct ProfileRecord {
  const char* name;
  cudaEvent_t start, end;
};
struct Profile {
  bool on = [] {
    const char* v = std::getenv("MMGRAD_CUDA_PROFILE");
    return v && std::string(v) == "1";
  }();
  std::mutex mu;
  std::vector<ProfileRecord> records;
};
Profile& profile() {
  static Profile* p = new Profile;  // never destroyed: scopes may end during static destruction
  return *p;
}
}  // namespace

bool profiling() { return profile().on; }

ProfileScope::ProfileScope(const char* name) {
  // Events recorded into a graph cannot be timed; a graph's replay is profiled as a whole.
  if (!profile().on || capturing()) return;
  name_ = name;
  cudaEventCreate(&start_);
  cudaEventRecord(start_, stream());
}

ProfileScope::~ProfileScope() {
  if (!start_) return;
  cudaEvent_t end = nullptr;
  cudaEventCreate(&end);
  cudaEventRecord(end, stream());
  std::lock_guard<std::mutex> lock(profile().mu);
  profile().records.push_back({name_, start_, end});
}

void profile_reset() {
  Profile& p = profile();
  std::lock_guard<std::mutex> lock(p.mu);
  for (auto& r : p.records) {
    cudaEventDestroy(r.start);
    cudaEventDestroy(r.end);
  }
  p.records.clear();
}

std::string profile_report(int steps) {
  if (!profiling()) return "kernel profile: off (set MMGRAD_CUDA_PROFILE=1)\n";
  synchronize();
  std::map<std::string, std::pair<int64_t, double>> by_name;
  double total = 0;
  {
    std::lock_guard<std::mutex> lock(profile().mu);
    for (auto& r : profile().records) {
      float ms = 0;
      cudaEventElapsedTime(&ms, r.start, r.end);
      auto& e = by_name[r.name];
      e.first += 1;
      e.second += ms;
      total += ms;
    }
  }
  profile_reset();
  std::vector<std::pair<std::string, std::pair<int64_t, double>>> rows(by_name.begin(), by_name.end());
  std::sort(rows.begin(), rows.end(), [](auto& a, auto& b) { return a.second.second > b.second.second; });
  const double per = steps > 0 ? steps : 1;
  std::string out = fmt::format("{:<24} {:>8} {:>10} {:>7}\n", "kernel (per step)", "calls", "GPU ms", "share");
  for (auto& [name, e] : rows)
    out += fmt::format("{:<24} {:>8.0f} {:>10.3f} {:>6.1f}%\n", name, e.first / per, e.second / per,
                       total > 0 ? 100 * e.second / total : 0.0);
  out += fmt::format("{:<24} {:>8} {:>10.3f}\n", "total", "", total / per);
  return out;
}

}  // namespace mmgrad::cuda
