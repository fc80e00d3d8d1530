// Reductions (sum, max, min, with optional indices) over any set of dims.
//
// The output keeps the input's rank with size 1 on reduced dims. We view the input as
// [kept..., reduced...] and give each output element its own walk over the reduced block;
// f32 sums accumulate in f64, so long reductions do not drift.
#include <cmath>
#include <limits>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"

namespace mmgrad::cpu {

void reduce(ReduceOp op, const Tensor& out, const Tensor& indices, const Tensor& in) {
  const int nd = in.dim();
  std::vector<int64_t> kept_size, kept_stride_in, kept_stride_out, red_size, red_stride;
  for (int d = 0; d < nd; ++d) {
    if (out.shape()[d] == 1 && in.shape()[d] != 1) {
      red_size.push_back(in.shape()[d]);
      red_stride.push_back(in.strides()[d]);
    } else if (in.shape()[d] != 1) {
      kept_size.push_back(in.shape()[d]);
      kept_stride_in.push_back(in.strides()[d]);
      kept_stride_out.push_back(out.strides()[d]);
    }
  }
  int64_t n_out = numel_of(kept_size);
  int64_t n_red = numel_of(red_size);
  if (indices.defined() && red_size.size() > 1)
    fail("reduce", "indices can only be returned for a reduction over one dim");
  std::vector<int64_t> idx_stride;
  if (indices.defined())
    for (int d = 0; d < nd; ++d)
      if (!(out.shape()[d] == 1 && in.shape()[d] != 1) && in.shape()[d] != 1)
        idx_stride.push_back(indices.strides()[d]);

  dispatch_numeric(in.dtype(), reduce_op_name(op), [&](auto tag) {
    using T = decltype(tag);
    using Acc = std::conditional_t<std::is_same_v<T, float>, double, T>;
    const T* src = in.data_ptr<T>();
    T* dst = out.data_ptr<T>();
    int64_t* idx = indices.defined() ? indices.data_ptr<int64_t>() : nullptr;
    int64_t grain = std::max<int64_t>(1, (1 << 15) / std::max<int64_t>(n_red, 1));
    parallel_for(0, n_out, grain, [&](int64_t lo, int64_t hi) {
      for (int64_t o = lo; o < hi; ++o) {
        int64_t in_off = 0, out_off = 0, idx_off = 0, rest = o;
        for (int d = static_cast<int>(kept_size.size()) - 1; d >= 0; --d) {
          int64_t i = rest % kept_size[d];
          rest /= kept_size[d];
          in_off += i * kept_stride_in[d];
          out_off += i * kept_stride_out[d];
          if (idx) idx_off += i * idx_stride[d];
        }
        const T* base = src + in_off;
        Acc acc{};
        int64_t best = 0;
        // Walk the reduced block; a contiguous innermost reduced dim is the common case.
        bool simple = red_size.size() == 1;
        for (int64_t r = 0; r < n_red; ++r) {
          int64_t off = 0;
          if (simple) {
            off = r * red_stride[0];
          } else {
            int64_t rr = r;
            for (int d = static_cast<int>(red_size.size()) - 1; d >= 0; --d) {
              off += (rr % red_size[d]) * red_stride[d];
              rr /= red_size[d];
            }
          }
          T v = base[off];
          if (op == ReduceOp::Sum) {
            acc += static_cast<Acc>(v);
          } else if (r == 0) {
            acc = static_cast<Acc>(v);
          } else {
            bool better;
            if constexpr (std::is_floating_point_v<T>) {
              // NaN wins, so a NaN anywhere shows in the result (as in PyTorch).
              if (std::isnan(static_cast<double>(acc))) better = false;
              else if (std::isnan(v)) better = true;
              else better = op == ReduceOp::Max ? v > acc : v < acc;
            } else {
              better = op == ReduceOp::Max ? v > acc : v < acc;
            }
            if (better) {
              acc = static_cast<Acc>(v);
              best = r;
            }
          }
        }
        if (n_red == 0 && op != ReduceOp::Sum)
          fail(reduce_op_name(op), "cannot reduce over an empty dimension");
        dst[out_off] = static_cast<T>(acc);
        if (idx) idx[idx_off] = best;
      }
    });
  });
}

}  // namespace mmgrad::cpu
