// A linear layer's forward on CUDA: out[M, N] = a[M, K] b[K, N] + bias[N] as one cuBLASLt
// matmul whose epilogue adds the bias while the GEMM stores its tiles. Composed (matmul, then
// add) the product is written, read back with the bias and written again: two passes over
// the widest activations of the step, and one more launch per linear layer.
//
// The operands map to cuBLAS's column-major view as in matmul.cpp: the row-major product
// C[M, N] = A B is the column-major C^T[N, M] = B^T A^T, so cuBLASLt's first operand is b,
// its second a, and D has N rows - the bias length CUBLASLT_EPILOGUE_BIAS broadcasts over D's
// columns. Plans (descriptors, layouts and the heuristic's algorithm) are cached per shape,
// strides, alignment and matmul precision: the heuristic query costs host time a
// launch-bound step cannot spare.
//
// Mixed precision: bf16 operands (rounded by autograd/autocast.h, or here from f32 ones at
// matmul precision BF16: bf16_operand.h) are read by bf16 kernels into the f32 output and
// bias.
//
// f64, a layout no transpose flag describes, a bias that is not 16-byte aligned, or no
// algorithm from the heuristic: the bias is broadcast into out and the product accumulated
// onto it (matmul with accumulate), which is exact and takes any strides. MMGRAD_CUDA_LT=0
// forces that path (A/B timing in gpu_check).
#include <cublasLt.h>
#include <fmt/format.h>

#include <algorithm>
#include <array>
#include <climits>
#include <cstdint>
#include <cstdlib>
#include <cstring>
#include <map>
#include <mutex>
#include <optional>

#include "backends/cuda/bf16_operand.h"
#include "backends/cuda/context.h"
#include "backends/cuda/gemm_layout.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#include "core/error.h"

namespace mmgrad::cuda {
namespace {

// cuBLASLt's own guidance for Hopper is 32 MiB (larger tiles and split-K use it).
constexpr size_t kWorkspaceBytes = size_t{32} << 20;

struct LtState {
  cublasLtHandle_t handle = nullptr;  // null: cuBLASLt unusable or switched off
  void* workspace = nullptr;
  size_t workspace_bytes = 0;
};

LtState& lt_state() {
  static LtState s;
  static std::once_flag once;
  std::call_once(once, [] {
    const char* env = std::getenv("MMGRAD_CUDA_LT");
    if (env && std::strcmp(env, "0") == 0) return;
    stream();  // the backend's context first (device and stream)
    if (cublasLtCreate(&s.handle) != CUBLAS_STATUS_SUCCESS) {
      s.handle = nullptr;
      return;
    }
    // Outside the caching allocator: one fixed buffer for the process, like cuBLAS's own.
    if (cudaMalloc(&s.workspace, kWorkspaceBytes) == cudaSuccess) {
      s.workspace_bytes = kWorkspaceBytes;
    } else {
      cudaGetLastError();
      s.workspace = nullptr;  // algorithms without workspace only
    }
  });
  return s;
}

// The largest power of two (up to 256) dividing the address: cuBLASLt picks kernels that
// assume the alignment it is told, 256 bytes unless told otherwise.
uint32_t alignment_of(const void* p) {
  const auto a = reinterpret_cast<uintptr_t>(p);
  uint32_t align = 256;
  while (align > 2 && a % align != 0) align /= 2;  // 2: a bf16 operand's element
  return align;
}

using PlanKey = std::array<int64_t, 14>;

struct Plan {
  cublasLtMatmulDesc_t desc = nullptr;
  cublasLtMatrixLayout_t first = nullptr, second = nullptr, out = nullptr;
  cublasLtMatmulAlgo_t algo{};
  bool usable = false;
};

void destroy(Plan& p) {
  if (p.desc) cublasLtMatmulDescDestroy(p.desc);
  for (cublasLtMatrixLayout_t l : {p.first, p.second, p.out})
    if (l) cublasLtMatrixLayoutDestroy(l);
  p = Plan{};
}

bool ok(cublasStatus_t s) { return s == CUBLAS_STATUS_SUCCESS; }

// Descriptors and the heuristic's first algorithm for one problem in cuBLAS's terms:
// D[m, n] = op(first)[m, k] op(second)[k, n] + bias[m], with f32 D and bias and operands of
// `operand_type`: f32 (computed at the matmul precision) or bf16 (f32 accumulation).
Plan make_plan(const LtState& lt, cudaDataType_t operand_type, cublasOperation_t op_first,
               cublasOperation_t op_second, int64_t m, int64_t n, int64_t k, int64_t ld_first, int64_t ld_second, int64_t ld_out, const void* first_ptr,
               const void* second_ptr, void* out_ptr, const void* bias_ptr) {
  Plan p;
  const cublasLtEpilogue_t epilogue = CUBLASLT_EPILOGUE_BIAS;
  const cublasComputeType_t compute =
      operand_type == CUDA_R_16BF ? CUBLAS_COMPUTE_32F : f32_compute_type(matmul_precision());
  bool good = ok(cublasLtMatmulDescCreate(&p.desc, compute, CUDA_R_32F)) &&
              ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSA, &op_first, sizeof(op_first))) &&
              ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_TRANSB, &op_second, sizeof(op_second))) &&
              ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_EPILOGUE, &epilogue, sizeof(epilogue))) &&
              ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr)));
  // Stored shapes: an operand used transposed is stored with its dims swapped.
  const bool t1 = op_first == CUBLAS_OP_T, t2 = op_second == CUBLAS_OP_T;
  good = good &&
         ok(cublasLtMatrixLayoutCreate(&p.first, operand_type, t1 ? k : m, t1 ? m : k, ld_first)) &&
         ok(cublasLtMatrixLayoutCreate(&p.second, operand_type, t2 ? n : k, t2 ? k : n, ld_second)) &&
         ok(cublasLtMatrixLayoutCreate(&p.out, CUDA_R_32F, m, n, ld_out));
  cublasLtMatmulPreference_t pref = nullptr;
  if (good && ok(cublasLtMatmulPreferenceCreate(&pref))) {
    const uint64_t ws = lt.workspace_bytes;
    const uint32_t a1 = alignment_of(first_ptr), a2 = alignment_of(second_ptr), ao = alignment_of(out_ptr);
    good = ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MAX_WORKSPACE_BYTES, &ws, sizeof(ws))) &&
           ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_A_BYTES, &a1, sizeof(a1))) &&
           ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_B_BYTES, &a2, sizeof(a2))) &&
           ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_C_BYTES, &ao, sizeof(ao))) &&
           ok(cublasLtMatmulPreferenceSetAttribute(pref, CUBLASLT_MATMUL_PREF_MIN_ALIGNMENT_D_BYTES, &ao, sizeof(ao)));
    cublasLtMatmulHeuristicResult_t result{};
    int found = 0;
    good = good && ok(cublasLtMatmulAlgoGetHeuristic(lt.handle, p.desc, p.first, p.second, p.out, p.out, pref, 1,
                                                     &result, &found)) &&
           found > 0 && ok(result.state);
    if (good) p.algo = result.algo;
    cublasLtMatmulPreferenceDestroy(pref);
  } else {
    good = false;
  }
  p.usable = good;
  return p;
}

// The cached plans, and the lock that also covers using one (its descriptor's bias pointer
// is set per call).
struct PlanCache {
  std::mutex lock;
  std::map<PlanKey, Plan> plans;
};
PlanCache& plan_cache() {
  static PlanCache* c = new PlanCache;  // never destroyed: calls may come during static destruction
  return *c;
}
constexpr size_t kMaxPlans = 512;  // distinct shapes; a run has a few dozen

// True when cuBLASLt computed out (f32, layouts it takes, a plan the heuristic found).
bool lt_matmul_bias(const Tensor& out, const Tensor& a_in, const Tensor& b_in, const Tensor& bias) {
  LtState& lt = lt_state();
  if (!lt.handle || out.dtype() != DType::F32) return false;
  // cuBLASLt is told no alignment for the bias and may pick a kernel that reads it in 16-byte
  // vectors (PyTorch's and Marian's users met "misaligned address" faults): a bias that is
  // not 16-byte aligned (a narrowed view) takes the composed path.
  if (alignment_of(bias.raw_data()) < 16) return false;
  // bf16 operands as given (autograd/autocast.h rounded them), or f32 ones rounded here at
  // the bf16 matmul precision.
  const bool given_bf16 = a_in.dtype() == DType::BF16;
  const bool round_to_bf16 = !given_bf16 && matmul_precision() == MatmulPrecision::BF16 && bf16_gemm_operands();
  const Tensor a = round_to_bf16 ? bf16_operand(a_in) : a_in;
  const Tensor b = round_to_bf16 ? bf16_operand(b_in) : b_in;
  const bool bf16 = given_bf16 || round_to_bf16;
  const cudaDataType_t operand_type = bf16 ? CUDA_R_16BF : CUDA_R_32F;
  const int64_t M = out.shape()[0], N = out.shape()[1], K = a.shape()[1];
  const std::optional<GemmLayout> la = gemm_layout_of(M, K, a.strides()[0], a.strides()[1]);
  const std::optional<GemmLayout> lb = gemm_layout_of(K, N, b.strides()[0], b.strides()[1]);
  const std::optional<GemmLayout> lc = gemm_layout_of(M, N, out.strides()[0], out.strides()[1]);
  if (!la || !lb || !lc || lc->transposed) return false;
  if (std::max({M, N, K, la->ld, lb->ld, lc->ld}) > int64_t{INT_MAX}) return false;
  // Column-major D[N, M] = op(b)[N, K] op(a)[K, M] + bias[N]; a row-major operand needs no flag.
  const cublasOperation_t op_first = lb->transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t op_second = la->transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const void* first = b.raw_data();
  const void* second = a.raw_data();
  void* dst = out.raw_data();
  const void* bias_ptr = bias.raw_data();
  const PlanKey key{M, N, K, lb->ld, la->ld, lc->ld, op_first, op_second, static_cast<int64_t>(matmul_precision()),
                    operand_type, alignment_of(first), alignment_of(second), alignment_of(dst), alignment_of(bias_ptr)};

  PlanCache& cache = plan_cache();
  std::lock_guard<std::mutex> guard(cache.lock);
  auto it = cache.plans.find(key);
  if (it == cache.plans.end()) {
    if (cache.plans.size() >= kMaxPlans) {
      for (auto& [k, p] : cache.plans) destroy(p);
      cache.plans.clear();
    }
    it = cache.plans
             .emplace(key, make_plan(lt, operand_type, op_first, op_second, N, M, K, lb->ld, la->ld, lc->ld, first,
                                     second, dst, bias_ptr))
             .first;
  }
  Plan& p = it->second;
  if (!p.usable) return false;
  if (!ok(cublasLtMatmulDescSetAttribute(p.desc, CUBLASLT_MATMUL_DESC_BIAS_POINTER, &bias_ptr, sizeof(bias_ptr))))
    return false;
  const float alpha = 1, beta = 0;
  ProfileScope profile(bf16 ? "matmul_bias (bf16 operands)" : "matmul_bias");
  const cublasStatus_t st = cublasLtMatmul(lt.handle, p.desc, &alpha, first, p.first, second, p.second, &beta, dst,
                                           p.out, dst, p.out, &p.algo, lt.workspace, lt.workspace_bytes, stream());
  if (!ok(st))
    fail("linear", fmt::format("cuBLASLt matmul with bias failed: {} (M {}, N {}, K {})", cublasGetStatusString(st),
                               M, N, K));
  return true;
}

}  // namespace

void matmul_bias(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  gemm_has_bf16_operands("matmul_bias", out, a, b);
  if (bias.dtype() != out.dtype())
    fail("matmul_bias", fmt::format("a {} bias for a {} product", dtype_name(bias.dtype()), dtype_name(out.dtype())));
  const int64_t M = out.shape()[0], N = out.shape()[1];
  if (M == 0 || N == 0) return;
  if (a.shape()[1] > 0 && lt_matmul_bias(out, a, b, bias)) return;
  // The exact composition for everything else: every row of out starts as the bias and the
  // product is accumulated onto it (an empty K leaves the bias alone).
  copy(out, bias.expand({M, N}));
  matmul(out, a, b, /*accumulate=*/true);
}

void prepare_matmul_bias() { lt_state(); }

}  // namespace mmgrad::cuda
