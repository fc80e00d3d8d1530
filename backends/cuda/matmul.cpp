// Batched matmul through cuBLAS. cuBLAS is column-major; a row-major product C = A B is the
// column-major product C^T = B^T A^T, and a row-major matrix is its transpose read
// column-major. So each operand's strides become a transpose flag and a leading dimension,
// and transposed views (attention's K^T, weight gradients) cost no copy. Batches with one
// stride per operand (including 0, a broadcast operand) go to the strided-batched call;
// batches an input walks with several strides (attention's heads as views of [B, T, H, D]
// projections) go to the pointer-array batched call, its address tables written by a kernel
// (batch_pointers.cu), again without copying the operand. A matrix no flag describes, or an
// output that is not row-major with one batch stride, is made contiguous first.
//
// Mixed precision (matmul precision BF16): f32 operands are rounded to bf16 tensors first
// (bf16_operand.h) and the GEMM reads those with bf16 tensor-core kernels, accumulating and
// writing f32. The backend also takes bf16 operands with an f32 product directly (the
// benchmark's GEMM ceiling). Every other dtype mix is an error.
#include <cublas_v2.h>
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <optional>

#include "backends/cuda/batch_pointers.h"
#include "backends/cuda/bf16_operand.h"
#include "backends/cuda/context.h"
#include "backends/cuda/gemm_layout.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#include "core/error.h"

namespace mmgrad::cuda {
namespace {

// MMGRAD_CUDA_POINTER_BATCH=0 copies multi-stride batches into dense operands instead (what
// bench/gpu_check.sh compares the pointer-array path against).
bool pointer_batches() {
  static const bool on = [] {
    const char* v = std::getenv("MMGRAD_CUDA_POINTER_BATCH");
    return !(v && std::string(v) == "0");
  }();
  return on;
}

Tensor contiguous_copy(const Tensor& t) {
  Tensor c = Tensor::empty(t.shape(), t.dtype(), t.device());
  copy(c, t);
  return c;
}

// The element types and the compute type of one GEMM. f64 runs exactly; f32 at the
// precision set in cuda.h (f32 arithmetic, or tensor cores on TF32- or bf16-rounded inputs
// with f32 accumulation); bf16 operands with f32 accumulation and an f32 product. Scale
// factors (alpha, beta) are f64 for an f64 GEMM, f32 otherwise.
struct GemmTypes {
  cudaDataType_t operands, product;
  cublasComputeType_t compute;
  bool f64;
};

GemmTypes gemm_types(DType operands, DType product) {
  if (product == DType::F64) return {CUDA_R_64F, CUDA_R_64F, CUBLAS_COMPUTE_64F, true};
  if (operands == DType::BF16) return {CUDA_R_16BF, CUDA_R_32F, CUBLAS_COMPUTE_32F, false};
  return {CUDA_R_32F, CUDA_R_32F, f32_compute_type(matmul_precision()), false};
}

// alpha = 1 and beta (0, or 1 to accumulate) in the GEMM's scale type.
struct Scales {
  double alpha64 = 1, beta64;
  float alpha32 = 1, beta32;
  explicit Scales(bool accumulate) : beta64(accumulate ? 1 : 0), beta32(accumulate ? 1.f : 0.f) {}
  const void* alpha(const GemmTypes& t) const { return t.f64 ? static_cast<const void*>(&alpha64) : &alpha32; }
  const void* beta(const GemmTypes& t) const { return t.f64 ? static_cast<const void*>(&beta64) : &beta32; }
};

// One strided-batched GEMM through cublasGemmStridedBatchedEx.
void gemm(cublasHandle_t h, const GemmTypes& types, const Scales& scales, cublasOperation_t ta,
          cublasOperation_t tb, int m, int n, int k, const void* A, int lda, long long sa, const void* B, int ldb,
          long long sb, void* C, int ldc, long long sc, int batch) {
  cublasStatus_t st = cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, scales.alpha(types), A, types.operands, lda, sa,
                                                 B, types.operands, ldb, sb, scales.beta(types), C, types.product,
                                                 ldc, sc, batch, types.compute, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    fail("matmul", fmt::format("cuBLAS gemm failed: {} (m {}, n {}, k {}, batch {})", cublasGetStatusString(st), m,
                               n, k, batch));
}

// The pointer-array form: tables[0..n) the A matrices, [n..2n) the B ones, [2n..3n) the Cs.
void gemm_batched(cublasHandle_t h, const GemmTypes& types, const Scales& scales, cublasOperation_t ta,
                  cublasOperation_t tb, int m, int n, int k, const Tensor& tables, int lda, int ldb, int ldc,
                  int batch) {
  void** p = static_cast<void**>(tables.raw_data());
  cublasStatus_t st = cublasGemmBatchedEx(h, ta, tb, m, n, k, scales.alpha(types), p, types.operands, lda, p + batch,
                                          types.operands, ldb, scales.beta(types),
                                          p + 2 * static_cast<int64_t>(batch), types.product, ldc, batch,
                                          types.compute, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    fail("matmul", fmt::format("cuBLAS batched gemm failed: {} (m {}, n {}, k {}, batch {})", cublasGetStatusString(st),
                               m, n, k, batch));
}

}  // namespace

void matmul(const Tensor& out_in, const Tensor& a_in, const Tensor& b_in, bool accumulate) {
  const int nd = out_in.dim();
  const int64_t M = out_in.shape()[nd - 2], N = out_in.shape()[nd - 1], K = a_in.shape()[nd - 1];
  const Shape batch(out_in.shape().begin(), out_in.shape().end() - 2);
  const int64_t n_batch = numel_of(batch);
  const DType product = out_in.dtype();
  const bool bf16_in = gemm_has_bf16_operands("matmul", out_in, a_in, b_in);
  if (!bf16_in && product != DType::F32 && product != DType::F64)
    fail("matmul", fmt::format("{} x {} -> {} is not supported on CUDA (f32 or f64)", dtype_name(a_in.dtype()),
                               dtype_name(b_in.dtype()), dtype_name(product)));
  if (M == 0 || N == 0 || n_batch == 0) return;
  if (K == 0) {  // an empty sum
    if (!accumulate) fill(out_in, 0);
    return;
  }

  // Mixed precision: f32 operands rounded to bf16 once, for the bf16 tensor-core GEMM.
  const bool round_to_bf16 =
      product == DType::F32 && !bf16_in && matmul_precision() == MatmulPrecision::BF16 && bf16_gemm_operands();
  // An operand cuBLAS can read in place: a transpose flag describes its matrices and either
  // one stride walks its batch or the pointer-array call may (its address tables hold one
  // element size for all three operands, so not for bf16 operands under an f32 product).
  auto usable = [&](const Tensor& t, int64_t rows, int64_t cols) {
    return gemm_layout_of(rows, cols, t.strides()[nd - 2], t.strides()[nd - 1]).has_value() &&
           ((pointer_batches() && t.dtype() == product) || batch_stride(t, batch));
  };
  auto operand = [&](const Tensor& t, int64_t rows, int64_t cols) {
    if (round_to_bf16) return bf16_operand(t);
    return usable(t, rows, cols) ? t : contiguous_copy(t);
  };
  const Tensor a = operand(a_in, M, K), b = operand(b_in, K, N);
  // The output must be row-major (cuBLAS writes C^T column-major) with one batch stride.
  std::optional<GemmLayout> lc = gemm_layout_of(M, N, out_in.strides()[nd - 2], out_in.strides()[nd - 1]);
  const bool out_ok = lc && !lc->transposed && batch_stride(out_in, batch) &&
                      (n_batch == 1 || *batch_stride(out_in, batch) != 0);
  Tensor out = out_in;
  if (!out_ok) {
    out = Tensor::empty(out_in.shape(), out_in.dtype(), out_in.device());
    if (accumulate) copy(out, out_in);
    lc = gemm_layout_of(M, N, N, 1);
  }
  const GemmLayout la = *gemm_layout_of(M, K, a.strides()[nd - 2], a.strides()[nd - 1]);
  const GemmLayout lb = *gemm_layout_of(K, N, b.strides()[nd - 2], b.strides()[nd - 1]);
  const std::optional<int64_t> sa = batch_stride(a, batch), sb = batch_stride(b, batch);
  const int64_t sc = *batch_stride(out, batch);
  if (std::max({M, N, K, la.ld, lb.ld, lc->ld, n_batch}) > int64_t{INT_MAX})
    fail("matmul", "a matrix dimension over 2^31 is not supported by cuBLAS's 32-bit interface");

  auto h = static_cast<cublasHandle_t>(cublas_handle());
  const GemmTypes types = gemm_types(a.dtype(), product);
  const Scales scales(accumulate);
  // Column-major C^T[N, M] = B^T[N, K] * A^T[K, M]: a row-major operand needs no flag.
  const cublasOperation_t opb = lb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opa = la.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  if (sa && sb) {
    ProfileScope profile(types.operands == CUDA_R_16BF ? "matmul (bf16 operands)" : "matmul");
    gemm(h, types, scales, opb, opa, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), b.raw_data(),
         static_cast<int>(lb.ld), *sb, a.raw_data(), static_cast<int>(la.ld), *sa, out.raw_data(),
         static_cast<int>(lc->ld), sc, static_cast<int>(n_batch));
  } else {
    // cuBLAS's A is our b, its B our a, its C our out (the column-major swap above).
    auto batch_view = [&](const Tensor& t) {
      return Tensor::alias(t, batch, Shape(t.strides().begin(), t.strides().end() - 2), t.offset());
    };
    const Tensor vb = batch_view(b), va = batch_view(a), vo = batch_view(out);
    const Strided<3> walk = make_strided<3>(batch, {&vb, &va, &vo}, "matmul");
    Tensor tables = Tensor::empty({3 * n_batch}, DType::I64, out.device());
    fill_batch_pointer_tables(tables, walk, n_batch, {b.raw_data(), a.raw_data(), out.raw_data()},
                              static_cast<int64_t>(out.element_size()));
    ProfileScope profile("matmul (pointer-array batch)");
    gemm_batched(h, types, scales, opb, opa, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), tables,
                 static_cast<int>(lb.ld), static_cast<int>(la.ld), static_cast<int>(lc->ld),
                 static_cast<int>(n_batch));
  }
  if (!out.is_same(out_in)) copy(out_in, out);
}

}  // namespace mmgrad::cuda
