// Fused blocks: several ops recorded as one node whose backward recomputes cheap
// intermediates instead of keeping them alive between forward and backward.
#include <fmt/format.h>

#include <tuple>
#include <utility>

#include "autograd/autocast.h"
#include "autograd/flops.h"
#include "autograd/op_helpers.h"

namespace mmgrad {
using autograd::record;
using autograd::SavedTensor;
using G = std::vector<Tensor>;

namespace {

// The normalised input (and statistics) of a LayerNorm over the last dim of x [N, W].
struct Normalised {
  Tensor xn, mean, rstd;
};
Normalised normalise(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  const int64_t rows = x.shape()[0];
  Normalised n{Tensor::empty(x.shape(), x.dtype(), x.device()), Tensor::empty({rows}, x.dtype(), x.device()),
               Tensor::empty({rows}, x.dtype(), x.device())};
  if (x.numel() > 0) MMGRAD_DISPATCH(layer_norm, x.device(), n.xn, n.mean, n.rstd, x, w, b, eps);
  return n;
}

Tensor activation(const Tensor& h, bool quick) { return quick ? quick_gelu(h) : gelu(h); }

// dW2 = g2^T act(h) and dH = (g2 W2) * act'(h) for g2 [N, O], W2 [O, H], h [N, H], where the
// backend has the fused activation_and_backward kernel: dA = g2 W2 first, then fixed chunks
// of rows, each one pass that writes act(h) into a chunk-sized buffer and turns dA into dH
// in place (the value and the derivative share their erfc and exp), and dW2 accumulated
// from the chunk while it is in cache. The full [N, H] activation never exists, and the
// activation is evaluated once in backward instead of twice.
std::pair<Tensor, Tensor> mlp_activation_backward(const Tensor& g2, const Tensor& w2, const Tensor& h, bool quick) {
  constexpr int64_t kRows = 256;
  const int64_t N = h.shape()[0], H = h.shape()[1], O = g2.shape()[1];
  Tensor dh = detail::matmul_product(g2, w2);  // dA
  Tensor dw2 = Tensor::empty({O, H}, h.dtype(), h.device());
  if (N == 0) fill_(dw2, 0);
  Tensor a_buf = Tensor::empty({std::min(N, kRows), H}, h.dtype(), h.device());
  for (int64_t r0 = 0; r0 < N; r0 += kRows) {
    const int64_t n = std::min(kRows, N - r0);
    const Tensor a = narrow(a_buf, 0, 0, n);
    MMGRAD_DISPATCH(activation_and_backward, h.device(), a, narrow(dh, 0, r0, n), narrow(h, 0, r0, n), quick);
    MMGRAD_DISPATCH(matmul, h.device(), dw2, transpose(narrow(g2, 0, r0, n), 0, 1), a, /*accumulate=*/r0 > 0);
    detail::add_matmul_flops(2 * static_cast<uint64_t>(O) * static_cast<uint64_t>(H) * static_cast<uint64_t>(n));
  }
  return {dw2, dh};
}

}  // namespace

Tensor layer_norm_mlp(const Tensor& x, const Tensor& ln_weight, const Tensor& ln_bias, double eps, const Tensor& w1,
                      const Tensor& b1, const Tensor& w2, const Tensor& b2, bool quick_gelu_act) {
  const char* op = "layer_norm_mlp";
  detail::check_floating(x, op);
  for (const Tensor* t : {&ln_weight, &ln_bias, &w1, &b1, &w2, &b2}) {
    detail::check_defined(*t, op, "parameter");
    detail::check_compatible(x, *t, op);
  }
  const int64_t W = x.dim() ? x.shape().back() : 0, H = w1.dim() == 2 ? w1.shape()[0] : -1;
  if (x.dim() < 1 || ln_weight.shape() != Shape{W} || ln_bias.shape() != Shape{W} || w1.shape() != Shape{H, W} ||
      b1.shape() != Shape{H} || w2.dim() != 2 || w2.shape()[1] != H || b2.shape() != Shape{w2.shape()[0]})
    fail(op, "expects x [..., W], LayerNorm weight and bias [W], w1 [H, W], b1 [H], w2 [O, H], b2 [O]",
         {describe("x", x), describe("ln_weight", ln_weight), describe("w1", w1), describe("b1", b1),
          describe("w2", w2), describe("b2", b2)});
  if (eps < 0) fail(op, "eps must be non-negative");
  if (!recompute_in_backward()) {  // keep everything: the plain composition
    Tensor h = linear(layer_norm(x, ln_weight, ln_bias, eps), w1, b1);
    return linear(quick_gelu_act ? quick_gelu(h) : gelu(h), w2, b2);
  }
  const int64_t N = W ? x.numel() / W : 0, O = w2.shape()[0];
  Shape out_shape = x.shape();
  out_shape.back() = O;

  // Under autocast (autograd/autocast.h) each GEMM runs on operands rounded to bf16 once;
  // the f32 weights are kept and rounded again in backward (small next to the activations).
  const bool bf16 = detail::autocasts(x, w1);
  auto operand = [bf16](const Tensor& t) { return bf16 ? detail::rounded_to_bf16(t) : t; };
  Tensor x2, h, y;
  Tensor mean, rstd;
  {
    NoGradGuard no_grad;
    x2 = reshape(contiguous(x), {N, W});
    Normalised n = normalise(x2, contiguous(ln_weight), contiguous(ln_bias), eps);
    mean = n.mean;
    rstd = n.rstd;
    h = detail::affine_rows(operand(n.xn), operand(w1), b1);  // [N, H]
    y = reshape(detail::affine_rows(operand(activation(h, quick_gelu_act)), operand(w2), b2), out_shape);
  }  // the normalised input and the activation are freed here: backward recomputes them
  record(op, y, {x, ln_weight, ln_bias, w1, b1, w2, b2},
         [xs = SavedTensor(x2), hs = SavedTensor(h), ms = SavedTensor(mean), rs = SavedTensor(rstd),
          lw = SavedTensor(ln_weight), lb = SavedTensor(ln_bias), w1s = SavedTensor(w1), w2s = SavedTensor(w2), eps,
          quick_gelu_act, in_shape = x.shape(), N, O, bf16, operand](const Tensor& g) {
           using detail::matmul_product;
           const Tensor& xv = xs.get();
           const Tensor& hv = hs.get();
           Tensor g2 = reshape(contiguous(g), {N, O});
           Tensor lwc = contiguous(lw.get());
           Tensor db2 = sum(g2, {0});
           Tensor dw2, dh;
           // The chunked activation backward multiplies f32 chunks; the bf16 GEMMs take the
           // composed path (the one CUDA, which has no chunked kernel, always takes).
           if (backend_for(hv.device()).activation_and_backward && !bf16) {
             std::tie(dw2, dh) = mlp_activation_backward(g2, w2s.get(), hv, quick_gelu_act);
           } else {
             // Ordered so that at most one [N, H] temporary is alive at a time (backward's
             // peak memory is set in the widest layers): the activation for dW2, then dA,
             // turned into dH in place.
             const Tensor g2m = operand(g2);
             {
               Tensor a = operand(activation(hv, quick_gelu_act));
               dw2 = matmul_product(transpose(g2m, 0, 1), a);
             }
             dh = matmul_product(g2m, operand(w2s.get()));  // dA
             MMGRAD_DISPATCH(binary, hv.device(), quick_gelu_act ? BinaryOp::QuickGeluBackward : BinaryOp::GeluBackward,
                             dh, dh, hv);  // elementwise, so in place is safe
           }
           Tensor db1 = sum(dh, {0});
           Tensor dhm = operand(dh);
           dh = Tensor();
           Tensor dw1 = matmul_product(transpose(dhm, 0, 1), operand(normalise(xv, lwc, contiguous(lb.get()), eps).xn));
           Tensor dxn = matmul_product(dhm, operand(w1s.get()));
           dhm = Tensor();
           const int64_t W = xv.shape()[1];
           Tensor dx = Tensor::empty(xv.shape(), xv.dtype(), xv.device());
           Tensor dlw = Tensor::empty({W}, xv.dtype(), xv.device()), dlb = Tensor::empty({W}, xv.dtype(), xv.device());
           if (xv.numel() > 0) {
             MMGRAD_DISPATCH(layer_norm_backward, xv.device(), dx, dlw, dlb, dxn, xv, ms.get(), rs.get(), lwc);
           } else {
             fill_(dlw, 0);
             fill_(dlb, 0);
           }
           return G{reshape(dx, in_shape), dlw, dlb, dw1, db1, dw2, db2};
         });
  return y;
}

}  // namespace mmgrad
