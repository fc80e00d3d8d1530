// Batched matmul: one strided GEMM per batch element. Strides go straight to gemm(), which
// passes transposed operands to BLAS as transpose flags instead of copying them.
#include "backends/cpu/dispatch.h"
#include "backends/cpu/gemm.h"
#include "backends/cpu/kernels.h"

namespace mmgrad::cpu {

void matmul(const Tensor& out, const Tensor& a, const Tensor& b, bool accumulate) {
  const int nd = out.dim();
  const int64_t M = out.shape()[nd - 2], N = out.shape()[nd - 1], K = a.shape()[nd - 1];
  Shape batch(out.shape().begin(), out.shape().end() - 2);
  const int64_t n_batch = numel_of(batch);
  dispatch_float(out.dtype(), "matmul", [&](auto tag) {
    using T = decltype(tag);
    const T* A = a.data_ptr<T>();
    const T* B = b.data_ptr<T>();
    T* C = out.data_ptr<T>();
    for (int64_t i = 0; i < n_batch; ++i) {
      int64_t oa = 0, ob = 0, oc = 0, rest = i;
      for (int d = nd - 3; d >= 0; --d) {
        int64_t k = rest % out.shape()[d];
        rest /= out.shape()[d];
        oa += k * a.strides()[d];
        ob += k * b.strides()[d];
        oc += k * out.strides()[d];
      }
      gemm(M, N, K, T(1), A + oa, a.strides()[nd - 2], a.strides()[nd - 1], B + ob,
           b.strides()[nd - 2], b.strides()[nd - 1], accumulate ? T(1) : T(0), C + oc,
           out.strides()[nd - 2], out.strides()[nd - 1]);
    }
  });
}

}  // namespace mmgrad::cpu
