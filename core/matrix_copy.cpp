#include "core/matrix_copy.h"

#include <algorithm>

namespace mmgrad {

MatrixCopyPlan plan_matrix_copy(const Tensor& t) {
  const int nd = t.dim();
  const int64_t rows = t.shape()[nd - 2], cols = t.shape()[nd - 1];
  const int64_t rs = t.strides()[nd - 2], cs = t.strides()[nd - 1];
  // Column-major in memory and not also row-major (a 1-row or 1-column matrix is both).
  const bool row_major = (cs == 1 || cols == 1) && (rows == 1 || rs >= std::max<int64_t>(cols, 1));
  const bool transposed = !row_major && (rs == 1 || rows == 1) && (cols == 1 || cs >= std::max<int64_t>(rows, 1));
  bool batch_broadcast = true;  // every batch element is the same matrix
  for (int d = 0; d < nd - 2; ++d) batch_broadcast = batch_broadcast && (t.shape()[d] == 1 || t.strides()[d] == 0);

  MatrixCopyPlan p;
  if (!batch_broadcast) {
    p.source_shape.assign(t.shape().begin(), t.shape().end() - 2);
    p.source_strides.assign(t.strides().begin(), t.strides().end() - 2);
  }
  p.source_shape.push_back(transposed ? cols : rows);
  p.source_shape.push_back(transposed ? rows : cols);
  p.source_strides.push_back(transposed ? cs : rs);
  p.source_strides.push_back(transposed ? rs : cs);

  // Row-major strides of the dense buffer, then back to t's dim order.
  const int dense_dims = static_cast<int>(p.source_shape.size());
  Shape dense(dense_dims, 1);
  for (int d = dense_dims - 2; d >= 0; --d) dense[d] = dense[d + 1] * std::max<int64_t>(p.source_shape[d + 1], 1);
  p.result_strides.assign(nd, 0);  // batch dims stay 0 when broadcast
  for (int d = 0; d < dense_dims - 2; ++d) p.result_strides[d] = dense[d];
  p.result_strides[nd - 2] = transposed ? 1 : cols;
  p.result_strides[nd - 1] = transposed ? rows : 1;
  return p;
}

Tensor copy_as_matrices(const Tensor& t, DType dtype, void (*copy)(const Tensor& dst, const Tensor& src)) {
  const MatrixCopyPlan plan = plan_matrix_copy(t);
  Tensor dense = Tensor::empty(plan.source_shape, dtype, t.device());
  if (dense.numel() > 0) copy(dense, Tensor::alias(t, plan.source_shape, plan.source_strides, t.offset()));
  return Tensor::alias(dense, t.shape(), plan.result_strides, 0);
}

}  // namespace mmgrad
