#include "autograd/autocast.h"

#include <algorithm>

#include "autograd/flops.h"
#include "autograd/op_helpers.h"
#include "core/matrix_copy.h"

namespace mmgrad {
namespace {
thread_local bool t_autocast[kNumDeviceTypes] = {};
}  // namespace

AutocastBf16::AutocastBf16(DeviceType device, bool on)
    : device_(device), previous_(t_autocast[static_cast<int>(device)]) {
  t_autocast[static_cast<int>(device)] = on;
}
AutocastBf16::~AutocastBf16() { t_autocast[static_cast<int>(device_)] = previous_; }

bool autocast_bf16(DeviceType device) { return t_autocast[static_cast<int>(device)]; }

bool detail::autocasts(const Tensor& a, const Tensor& b) {
  return a.dtype() == DType::F32 && b.dtype() == DType::F32 && autocast_bf16(a.device().type);
}

Tensor detail::rounded_to_bf16(const Tensor& t) {
  return copy_as_matrices(t, DType::BF16, [](const Tensor& dst, const Tensor& src) {
    MMGRAD_DISPATCH(copy, src.device(), dst, src);
  });
}

namespace {
// t viewed with `shape` (leading dims added or size-1 dims broadcast, stride 0).
Tensor broadcast_to(const Tensor& t, const Shape& shape) {
  const size_t lead = shape.size() - t.dim();
  Shape strides(shape.size(), 0);
  for (size_t i = lead; i < shape.size(); ++i)
    strides[i] = t.shape()[i - lead] == shape[i] ? t.strides()[i - lead] : 0;
  return Tensor::alias(t, shape, strides, t.offset());
}
}  // namespace

Tensor detail::matmul_product(const Tensor& a, const Tensor& b) {
  const int64_t M = a.shape()[a.dim() - 2], K = a.shape()[a.dim() - 1], N = b.shape()[b.dim() - 1];
  const DType out_dtype = a.dtype() == DType::BF16 ? DType::F32 : a.dtype();
  // A batched, dense a times a plain matrix: one GEMM over all of a's rows.
  if (b.dim() == 2 && a.dim() > 2 && a.is_contiguous()) {
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    out_shape.push_back(N);
    const int64_t rows = a.numel() / std::max<int64_t>(K, 1);
    const Tensor flat = Tensor::alias(a, {rows, K}, {K, 1}, a.offset());
    const Tensor out = matmul_product(flat, b);
    return Tensor::alias(out, out_shape, contiguous_strides(out_shape), 0);
  }
  const Shape batch = broadcast_shapes(Shape(a.shape().begin(), a.shape().end() - 2),
                                       Shape(b.shape().begin(), b.shape().end() - 2), "matmul");
  Shape sa = batch, sb = batch, so = batch;
  sa.insert(sa.end(), {M, K});
  sb.insert(sb.end(), {K, N});
  so.insert(so.end(), {M, N});
  Tensor out = Tensor::empty(so, out_dtype, a.device());
  if (K == 0) {
    MMGRAD_DISPATCH(fill, a.device(), out, 0.0);
  } else if (out.numel() > 0) {
    MMGRAD_DISPATCH(matmul, a.device(), out, broadcast_to(a, sa), broadcast_to(b, sb), false);
    add_matmul_flops(2 * static_cast<uint64_t>(out.numel()) * static_cast<uint64_t>(K));
  }
  return out;
}

}  // namespace mmgrad
