// Batched matmul: one strided GEMM per batch element. Strides go straight to gemm(), which
// passes transposed operands to BLAS as transpose flags instead of copying them.
//
// bf16 operands with an f32 product (mixed precision's GEMM inputs, rounded to bf16 by
// autograd/autocast.h) are widened to f32 first, which is exact, keeping their layout; the
// product is then the f32 GEMM's: the CPU reference for the CUDA backend's bf16 GEMMs.
#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/strided_loop.h"
#include "core/matrix_copy.h"

namespace mmgrad::cpu {
namespace {
// Function-pointer-friendly wrappers over the overloaded GEMM entry points.
template <typename T>
void gemm_t(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa, const T* B,
            int64_t rsb, int64_t csb, T beta, T* C, int64_t rsc, int64_t csc) {
  gemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}
template <typename T>
void builtin_gemm_t(int64_t M, int64_t N, int64_t K, T alpha, const T* A, int64_t rsa, int64_t csa,
                    const T* B, int64_t rsb, int64_t csb, T beta, T* C, int64_t rsc, int64_t csc) {
  builtin_gemm(M, N, K, alpha, A, rsa, csa, B, rsb, csb, beta, C, rsc, csc);
}

// A bf16 operand as f32 (exact), in the same layout (core/matrix_copy.h).
Tensor widened(const Tensor& t) { return copy_as_matrices(t, DType::F32, copy); }
}  // namespace

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate) {
  if (gemm_has_bf16_operands("matmul", out, a, b)) {
    matmul(out, widened(a), widened(b), accumulate);
    return;
  }
  const int nd = out.dim();
  const int64_t M = out.shape()[nd - 2], N = out.shape()[nd - 1], K = a.shape()[nd - 1];
  Shape batch(out.shape().begin(), out.shape().end() - 2);
  const int64_t n_batch = numel_of(batch);
  dispatch_float(out.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* A = a.data_ptr<T>();
    const T* B = b.data_ptr<T>();
    T* C = out.data_ptr<T>();
    // Many small GEMMs (attention's per-head products) are too small to thread one by one:
    // run the batch in parallel instead, each GEMM on one core with the built-in kernel
    // (calling into OpenBLAS from several threads at once is not something we rely on).
    const bool batch_parallel = n_batch > 1 && M * N * K < (1 << 21);
    auto one = [&](int64_t i) {
      const int64_t oa = batch_offset(a, i), ob = batch_offset(b, i), oc = batch_offset(out, i);
      auto run = batch_parallel ? &builtin_gemm_t<T> : &gemm_t<T>;
      run(M, N, K, T(1), A + oa, a.strides()[nd - 2], a.strides()[nd - 1], B + ob,
          b.strides()[nd - 2], b.strides()[nd - 1], accumulate ? T(1) : T(0), C + oc,
          out.strides()[nd - 2], out.strides()[nd - 1]);
    };
    if (batch_parallel) {
      parallel_for(0, n_batch, 1, [&](int64_t lo, int64_t hi) {
        for (int64_t i = lo; i < hi; ++i) one(i);
      });
    } else {
      for (int64_t i = 0; i < n_batch; ++i) one(i);
    }
  });
}

void matmul_bias(const Tensor& out, const Tensor& a, const Tensor& b, const Tensor& bias) {
  if (out.dim() != 2 || a.dim() != 2 || b.dim() != 2 || a.shape()[0] != out.shape()[0] ||
      b.shape()[0] != a.shape()[1] || b.shape()[1] != out.shape()[1] || bias.shape() != Shape{out.shape()[1]} ||
      !bias.is_contiguous())
    fail("matmul_bias", "expects out [M, N], a [M, K], b [K, N] and a contiguous bias [N]");
  if (gemm_has_bf16_operands("matmul_bias", out, a, b)) {
    matmul_bias(out, widened(a), widened(b), bias);
    return;
  }
  const int64_t M = out.shape()[0], N = out.shape()[1], K = a.shape()[1];
  dispatch_float(out.dtype(), "matmul_bias", [&](auto tag) {
    using T = decltype(tag);
    gemm_bias(M, N, K, a.data_ptr<T>(), a.strides()[0], a.strides()[1], b.data_ptr<T>(), b.strides()[0],
              b.strides()[1], bias.data_ptr<T>(), out.data_ptr<T>(), out.strides()[0], out.strides()[1]);
  });
}

}  // namespace mmgrad::cpu
