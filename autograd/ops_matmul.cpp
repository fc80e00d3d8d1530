// matmul and linear. Transposed operands stay views: the kernel hands their strides to
// BLAS as transpose flags.
#include <atomic>

#include "autograd/autocast.h"
#include "autograd/flops.h"
#include "autograd/op_helpers.h"

namespace mmgrad {

namespace {
std::atomic<uint64_t> g_matmul_flops{0};
}  // namespace

uint64_t matmul_flops() { return g_matmul_flops.load(std::memory_order_relaxed); }
void detail::add_matmul_flops(uint64_t flops) { g_matmul_flops.fetch_add(flops, std::memory_order_relaxed); }

using autograd::record;
using autograd::SavedTensor;
using G = std::vector<Tensor>;

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
    const int64_t rows = numel_of(Shape(a.shape().begin(), a.shape().end() - 1));
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

namespace {

// a [..., M, K] @ b [..., K, N] with both at least 2-D. Under autocast (autograd/autocast.h)
// the operands are rounded to bf16 once, the node keeps the rounded ones, and backward
// rounds the incoming gradient once.
Tensor matmul_nd(const Tensor& a, const Tensor& b) {
  const int64_t K = a.shape()[a.dim() - 1], K2 = b.shape()[b.dim() - 2];
  if (K != K2)
    fail("matmul", fmt::format("inner dimensions differ: {} vs {}", K, K2), {describe("a", a), describe("b", b)});
  // A batched input times a plain matrix is one big GEMM: fold the batch into M. This also
  // makes the weight gradient one GEMM instead of a batch of them summed afterwards.
  if (b.dim() == 2 && a.dim() > 2) {
    Shape out_shape(a.shape().begin(), a.shape().end() - 1);
    out_shape.push_back(b.shape()[1]);
    const int64_t rows = numel_of(Shape(a.shape().begin(), a.shape().end() - 1));
    return reshape(matmul_nd(reshape(a, {rows, K}), b), out_shape);
  }
  const bool bf16 = detail::autocasts(a, b);
  const Tensor am = bf16 ? detail::rounded_to_bf16(a) : a, bm = bf16 ? detail::rounded_to_bf16(b) : b;
  Tensor out = detail::matmul_product(am, bm);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  record("matmul", out, {a, b}, [as = SavedTensor(gb ? am : Tensor()), bs = SavedTensor(ga ? bm : Tensor()),
                                 shape_a = a.shape(), shape_b = b.shape(), ga, gb, bf16](const Tensor& g) {
    const Tensor gm = bf16 ? detail::rounded_to_bf16(g) : g;
    Tensor grad_a, grad_b;
    if (ga) grad_a = sum_to(detail::matmul_product(gm, transpose(bs.get(), -1, -2)), shape_a);
    if (gb) grad_b = sum_to(detail::matmul_product(transpose(as.get(), -1, -2), gm), shape_b);
    return G{grad_a, grad_b};
  });
  return out;
}

}  // namespace

Tensor matmul(const Tensor& a, const Tensor& b) {
  detail::check_compatible(a, b, "matmul");
  detail::check_floating(a, "matmul");
  if (a.dim() == 0 || b.dim() == 0)
    fail("matmul", "operands must have at least one dim", {describe("a", a), describe("b", b)});
  // 1-D operands are promoted as in NumPy and the added dim removed afterwards.
  if (a.dim() == 1 && b.dim() == 1) return reshape(matmul_nd(unsqueeze(a, 0), unsqueeze(b, 1)), {});
  if (a.dim() == 1) return squeeze(matmul_nd(unsqueeze(a, 0), b), -2);
  if (b.dim() == 1) return squeeze(matmul_nd(a, unsqueeze(b, 1)), -1);
  return matmul_nd(a, b);
}

Tensor detail::affine_rows(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  NoGradGuard no_grad;
  if (!backend_for(x.device()).matmul_bias) return add(detail::matmul_product(x, transpose(weight, 0, 1)), bias);
  const int64_t rows = x.shape()[0], K = x.shape()[1], O = weight.shape()[0];
  Tensor y = Tensor::empty({rows, O}, bias.dtype(), x.device());
  MMGRAD_DISPATCH(matmul_bias, x.device(), y, x, transpose(weight, 0, 1), contiguous(bias));
  detail::add_matmul_flops(2 * static_cast<uint64_t>(rows) * static_cast<uint64_t>(O) * static_cast<uint64_t>(K));
  return y;
}

Tensor linear(const Tensor& x, const Tensor& weight, const Tensor& bias) {
  detail::check_defined(x, "linear", "x");
  detail::check_defined(weight, "linear", "weight");
  if (weight.dim() != 2)
    fail("linear", "weight must be 2-D [out, in]", {describe("x", x), describe("weight", weight)});
  if (x.dim() == 0 || x.shape().back() != weight.shape()[1])
    fail("linear", fmt::format("input features ({}) do not match weight's in-features ({})",
                               x.dim() ? x.shape().back() : 0, weight.shape()[1]),
         {describe("x", x), describe("weight", weight)});
  if (!bias.defined()) return matmul(x, transpose(weight, 0, 1));
  if (bias.dim() != 1 || bias.shape()[0] != weight.shape()[0])
    fail("linear", "bias must be 1-D [out]", {describe("weight", weight), describe("bias", bias)});
  if (!backend_for(x.device()).matmul_bias) return add(matmul(x, transpose(weight, 0, 1)), bias);
  // One node instead of matmul + add, and the bias added as the GEMM stores its output (no
  // second pass over it).
  detail::check_compatible(x, weight, "linear");
  detail::check_compatible(x, bias, "linear");
  detail::check_floating(x, "linear");
  const int64_t K = weight.shape()[1], O = weight.shape()[0];
  const int64_t rows = numel_of(Shape(x.shape().begin(), x.shape().end() - 1));
  Shape out_shape = x.shape();
  out_shape.back() = O;
  // Under autocast the GEMMs run on operands rounded to bf16 once (autograd/autocast.h). The
  // node keeps the rounded input and the f32 weight (a parameter, alive anyway; rounded
  // again in backward rather than kept twice).
  const bool bf16 = detail::autocasts(x, weight);
  Tensor xm, wm, y;
  {
    NoGradGuard no_grad;
    const Tensor x2 = reshape(x, {rows, K});
    xm = bf16 ? detail::rounded_to_bf16(x2) : x2;
    wm = bf16 ? detail::rounded_to_bf16(weight) : weight;
    y = reshape(detail::affine_rows(xm, wm, bias), out_shape);
  }
  const bool gx = x.requires_grad(), gw = weight.requires_grad(), gb = bias.requires_grad();
  record("linear", y, {x, weight, bias},
         [xs = SavedTensor(gw ? xm : Tensor()), ws = SavedTensor(gx ? weight : Tensor()), x_shape = x.shape(), rows,
          O, gx, gw, gb, bf16](const Tensor& g) {
           const Tensor g2 = reshape(g, {rows, O});
           const Tensor gm = bf16 ? detail::rounded_to_bf16(g2) : g2;
           Tensor grad_x, grad_w;
           if (gx) grad_x = reshape(detail::matmul_product(gm, bf16 ? detail::rounded_to_bf16(ws.get()) : ws.get()), x_shape);
           if (gw) grad_w = detail::matmul_product(transpose(gm, 0, 1), xs.get());
           return G{grad_x, grad_w, gb ? sum(g2, {0}) : Tensor()};
         });
  return y;
}

}  // namespace mmgrad
