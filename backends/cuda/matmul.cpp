// Batched matmul through cuBLAS. cuBLAS is column-major; a row-major product C = A B is the
// column-major product C^T = B^T A^T, and a row-major matrix is its transpose read
// column-major. So each operand's strides become a transpose flag and a leading dimension,
// and transposed views (attention's K^T, weight gradients) cost no copy. Batches with one
// stride per operand (including 0, a broadcast operand) go to the strided-batched call;
// batches an input walks with several strides (attention's heads as views of [B, T, H, D]
// projections) go to the pointer-array batched call, its address tables written by a kernel
// (batch_pointers.cu), again without copying the operand. A matrix no flag describes, or an
// output that is not row-major with one batch stride, is made contiguous first.
#include <cublas_v2.h>
#include <fmt/format.h>

#include <algorithm>
#include <climits>
#include <cstdlib>
#include <string>
#include <optional>

#include "backends/cuda/batch_pointers.h"
#include "backends/cuda/context.h"
#include "backends/cuda/gemm_layout.h"
#include "backends/cuda/cuda.h"
#include "backends/cuda/kernels.h"
#include "core/error.h"

namespace mmgrad::cuda {
namespace {

// One stride that walks every batch element of t in row-major batch order, if there is one.
std::optional<int64_t> batch_stride(const Tensor& t, const Shape& batch) {
  std::optional<int64_t> stride;
  int64_t expected_next = -1;  // stride the next (inner) batch dim must have times its size
  for (int d = static_cast<int>(batch.size()) - 1; d >= 0; --d) {
    if (batch[d] == 1) continue;
    const int64_t s = t.strides()[d];
    if (!stride) {
      stride = s;
    } else if (s != expected_next) {
      return std::nullopt;
    }
    expected_next = s * batch[d];
  }
  return stride.value_or(0);
}

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

// One strided-batched GEMM through cublasGemmStridedBatchedEx: f64 exactly, f32 at the
// precision set in cuda.h (f32 arithmetic, or tensor cores on TF32- or bf16-rounded inputs
// with f32 accumulation).
template <typename T>
void gemm(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k, const T* A, int lda,
          long long sa, const T* B, int ldb, long long sb, T beta, T* C, int ldc, long long sc, int batch) {
  const T alpha = 1;
  cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  cublasComputeType_t compute = CUBLAS_COMPUTE_64F;
  if constexpr (std::is_same_v<T, float>) compute = f32_compute_type(matmul_precision());
  cublasStatus_t st = cublasGemmStridedBatchedEx(h, ta, tb, m, n, k, &alpha, A, type, lda, sa, B, type, ldb, sb,
                                                 &beta, C, type, ldc, sc, batch, compute, CUBLAS_GEMM_DEFAULT);
  if (st != CUBLAS_STATUS_SUCCESS)
    fail("matmul", fmt::format("cuBLAS gemm failed: {} (m {}, n {}, k {}, batch {})", cublasGetStatusString(st), m,
                               n, k, batch));
}

// The pointer-array form: tables[0..n) the A matrices, [n..2n) the B ones, [2n..3n) the Cs.
template <typename T>
void gemm_batched(cublasHandle_t h, cublasOperation_t ta, cublasOperation_t tb, int m, int n, int k,
                  const Tensor& tables, int lda, int ldb, T beta, int ldc, int batch) {
  const T alpha = 1;
  cudaDataType_t type = std::is_same_v<T, float> ? CUDA_R_32F : CUDA_R_64F;
  cublasComputeType_t compute = CUBLAS_COMPUTE_64F;
  if constexpr (std::is_same_v<T, float>) compute = f32_compute_type(matmul_precision());
  void** p = static_cast<void**>(tables.raw_data());
  cublasStatus_t st = cublasGemmBatchedEx(h, ta, tb, m, n, k, &alpha, p, type, lda, p + batch, type, ldb, &beta,
                                          p + 2 * static_cast<int64_t>(batch), type, ldc, batch, compute,
                                          CUBLAS_GEMM_DEFAULT);
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
  if (M == 0 || N == 0 || n_batch == 0) return;
  if (K == 0) {  // an empty sum
    if (!accumulate) fill(out_in, 0);
    return;
  }
  if (out_in.dtype() != DType::F32 && out_in.dtype() != DType::F64)
    fail("matmul", std::string(dtype_name(out_in.dtype())) + " matmul is not supported on CUDA (f32 or f64)");

  auto usable = [&](const Tensor& t, int64_t rows, int64_t cols) {
    return gemm_layout_of(rows, cols, t.strides()[nd - 2], t.strides()[nd - 1]).has_value() &&
           (pointer_batches() || batch_stride(t, batch));
  };
  Tensor a = usable(a_in, M, K) ? a_in : contiguous_copy(a_in);
  Tensor b = usable(b_in, K, N) ? b_in : contiguous_copy(b_in);
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
  // Column-major C^T[N, M] = B^T[N, K] * A^T[K, M]: a row-major operand needs no flag.
  const cublasOperation_t opb = lb.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  const cublasOperation_t opa = la.transposed ? CUBLAS_OP_T : CUBLAS_OP_N;
  auto run = [&](auto tag) {
    using T = decltype(tag);
    if (sa && sb) {
      ProfileScope profile("matmul");
      gemm<T>(h, opb, opa, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K),
              static_cast<const T*>(b.raw_data()), static_cast<int>(lb.ld), *sb, static_cast<const T*>(a.raw_data()),
              static_cast<int>(la.ld), *sa, accumulate ? T(1) : T(0), static_cast<T*>(out.raw_data()),
              static_cast<int>(lc->ld), sc, static_cast<int>(n_batch));
      return;
    }
    // cuBLAS's A is our b, its B our a, its C our out (the column-major swap above).
    auto batch_view = [&](const Tensor& t) {
      return Tensor::alias(t, batch, Shape(t.strides().begin(), t.strides().end() - 2), t.offset());
    };
    const Tensor vb = batch_view(b), va = batch_view(a), vo = batch_view(out);
    const Strided<3> walk = make_strided<3>(batch, {&vb, &va, &vo}, "matmul");
    Tensor tables = Tensor::empty({3 * n_batch}, DType::I64, out.device());
    fill_batch_pointer_tables(tables, walk, n_batch, {b.raw_data(), a.raw_data(), out.raw_data()},
                              static_cast<int64_t>(sizeof(T)));
    ProfileScope profile("matmul (pointer-array batch)");
    gemm_batched<T>(h, opb, opa, static_cast<int>(N), static_cast<int>(M), static_cast<int>(K), tables,
                    static_cast<int>(lb.ld), static_cast<int>(la.ld), accumulate ? T(1) : T(0),
                    static_cast<int>(lc->ld), static_cast<int>(n_batch));
  };
  if (out.dtype() == DType::F32)
    run(float{});
  else
    run(double{});
  if (!out.is_same(out_in)) copy(out_in, out);
}

}  // namespace mmgrad::cuda
