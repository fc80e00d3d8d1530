// Neural-network ops: fused kernels with their own backward (softmax, layer_norm,
// cross_entropy, attention) and compositions of other ops (dropout, embedding, patch_embed).
#include <algorithm>
#include <cmath>
#include <limits>

#include "autograd/flops.h"
#include "autograd/op_helpers.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

namespace mmgrad {
using autograd::record;
using autograd::SavedTensor;
using G = std::vector<Tensor>;

namespace {

// softmax over the last dim of a contiguous tensor, as one recorded op.
Tensor softmax_last(const Tensor& x, bool log) {
  Tensor xc = contiguous(x);
  Tensor y = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
  if (y.numel() > 0) MMGRAD_DISPATCH(softmax, xc.device(), y, xc, log);
  record(log ? "log_softmax" : "softmax", y, {xc}, [y_saved = SavedTensor(y), log](const Tensor& g) {
    const Tensor& yv = y_saved.get();
    Tensor gc = contiguous(g);
    Tensor gi = Tensor::empty(yv.shape(), yv.dtype(), yv.device());
    if (gi.numel() > 0) MMGRAD_DISPATCH(softmax_backward, yv.device(), gi, gc, yv, log);
    return G{gi};
  });
  return y;
}

Tensor softmax_any_dim(const Tensor& x, int64_t dim, bool log) {
  const char* name = log ? "log_softmax" : "softmax";
  detail::check_defined(x, name, "x");
  detail::check_floating(x, name);
  if (x.dim() == 0) return softmax_any_dim(reshape(x, {1}), 0, log).reshape({});
  int d = normalize_dim(dim, x.dim(), name);
  if (d == x.dim() - 1) return softmax_last(x, log);
  return transpose(softmax_last(transpose(x, d, -1), log), d, -1);
}

}  // namespace

Tensor softmax(const Tensor& x, int64_t dim) { return softmax_any_dim(x, dim, false); }
Tensor log_softmax(const Tensor& x, int64_t dim) { return softmax_any_dim(x, dim, true); }

Tensor layer_norm(const Tensor& x, const Tensor& weight, const Tensor& bias, double eps) {
  detail::check_defined(x, "layer_norm", "x");
  detail::check_floating(x, "layer_norm");
  if (x.dim() == 0) fail("layer_norm", "input must have at least one dim", {describe("x", x)});
  const int64_t C = x.shape().back();
  for (const Tensor* p : {&weight, &bias})
    if (p->defined()) {
      detail::check_compatible(x, *p, "layer_norm");
      if (p->dim() != 1 || p->shape()[0] != C)
        fail("layer_norm", fmt::format("weight and bias must be [{}] (the last dim of x)", C),
             {describe("x", x), describe(p == &weight ? "weight" : "bias", *p)});
    }
  if (eps < 0) fail("layer_norm", "eps must be non-negative");
  Tensor xc = contiguous(x);
  int64_t rows = C ? xc.numel() / C : 0;
  Tensor y = Tensor::empty(xc.shape(), xc.dtype(), xc.device());
  Tensor mu = Tensor::empty({rows}, xc.dtype(), xc.device());
  Tensor rstd = Tensor::empty({rows}, xc.dtype(), xc.device());
  Tensor wc = weight.defined() ? contiguous(weight) : Tensor();
  Tensor bc = bias.defined() ? contiguous(bias) : Tensor();
  if (xc.numel() > 0) MMGRAD_DISPATCH(layer_norm, xc.device(), y, mu, rstd, xc, wc, bc, eps);
  bool gx = xc.requires_grad(), gw = wc.defined() && wc.requires_grad(), gb = bc.defined() && bc.requires_grad();
  record("layer_norm", y, {xc, wc, bc},
         [xs = SavedTensor(xc), ws = SavedTensor(wc), ms = SavedTensor(mu), rs = SavedTensor(rstd), gx, gw,
          gb](const Tensor& g) {
           const Tensor& xv = xs.get();
           Tensor gc = contiguous(g);
           Tensor dx = gx ? Tensor::empty(xv.shape(), xv.dtype(), xv.device()) : Tensor();
           int64_t C = xv.shape().back();
           Tensor dw = gw ? Tensor::empty({C}, xv.dtype(), xv.device()) : Tensor();
           Tensor db = gb ? Tensor::empty({C}, xv.dtype(), xv.device()) : Tensor();
           if (xv.numel() > 0) {
             MMGRAD_DISPATCH(layer_norm_backward, xv.device(), dx, dw, db, gc, xv, ms.get(), rs.get(), ws.get());
           } else {
             if (dw.defined()) fill_(dw, 0);
             if (db.defined()) fill_(db, 0);
           }
           return G{dx, dw, db};
         });
  return y;
}

Tensor cross_entropy(const Tensor& logits, const Tensor& target, int64_t ignore_index,
                     double label_smoothing, Reduction reduction) {
  detail::check_defined(logits, "cross_entropy", "logits");
  detail::check_defined(target, "cross_entropy", "target");
  detail::check_floating(logits, "cross_entropy");
  detail::check_integer_index(target, "cross_entropy");
  if (logits.dim() != 2 || target.dim() != 1 || target.shape()[0] != logits.shape()[0])
    fail("cross_entropy", "expects logits [N, C] and target [N]",
         {describe("logits", logits), describe("target", target)});
  if (logits.device() != target.device())
    fail("cross_entropy", "logits and target are on different devices",
         {describe("logits", logits), describe("target", target)});
  if (!(label_smoothing >= 0 && label_smoothing <= 1))
    fail("cross_entropy", fmt::format("label_smoothing {} is outside [0, 1]", label_smoothing));
  const int64_t N = logits.shape()[0];
  Tensor lc = contiguous(logits);
  Tensor tc = contiguous(target.to(DType::I64));
  Tensor loss = Tensor::empty({N}, lc.dtype(), lc.device());
  Tensor lse = Tensor::empty({N}, lc.dtype(), lc.device());
  if (N > 0) MMGRAD_DISPATCH(cross_entropy, lc.device(), loss, lse, lc, tc, ignore_index, label_smoothing);
  record("cross_entropy", loss, {lc},
         [ls = SavedTensor(lc), lses = SavedTensor(lse), ts = SavedTensor(tc), ignore_index,
          label_smoothing](const Tensor& g) {
           const Tensor& lv = ls.get();
           Tensor gi = Tensor::empty(lv.shape(), lv.dtype(), lv.device());
           if (lv.numel() > 0)
             MMGRAD_DISPATCH(cross_entropy_backward, lv.device(), gi, contiguous(g), lv, lses.get(), ts.get(),
                             ignore_index, label_smoothing);
           return G{gi};
         });
  switch (reduction) {
    case Reduction::None: return loss;
    case Reduction::Sum: return sum(loss);
    case Reduction::Mean: {
      // Average over the targets that count; all ignored gives NaN (0/0), as in PyTorch.
      Tensor counted = sum(ne(tc, static_cast<double>(ignore_index)).to(lc.dtype()));
      return div(sum(loss), counted);
    }
  }
  return loss;
}

namespace {
// softmax(scale * q k^T + mask) with the causal mask applied, under no-grad (forward, and
// backward's recomputation).
Tensor attention_probs(const Tensor& q, const Tensor& k, double sc, const Tensor& attn_mask, bool causal) {
  NoGradGuard no_grad;
  const int nd = q.dim();
  const int64_t T = q.shape()[nd - 2], S = k.shape()[nd - 2];
  Tensor scores = mul(matmul(q, transpose(k, -1, -2)), sc);
  if (attn_mask.defined() && attn_mask.dtype() == DType::Bool) {
    // A boolean mask says where to attend (true) as in PyTorch; elsewhere scores are -inf.
    scores = where(attn_mask, scores, -std::numeric_limits<double>::infinity());
  } else if (attn_mask.defined()) {
    scores = add(scores, attn_mask);
  }
  if (causal) {
    Tensor rows = unsqueeze(arange(0, static_cast<double>(T), 1, DType::I64, q.device()), 1);
    Tensor cols = unsqueeze(arange(0, static_cast<double>(S), 1, DType::I64, q.device()), 0);
    scores = where(gt(cols, rows), scalar_tensor(-std::numeric_limits<double>::infinity(), q.dtype(), q.device()),
                   scores);
  }
  return softmax(scores, -1);
}
// An uninitialised tensor of `shape` laid out in memory as `like` is (dims in the order of
// its strides), or contiguous where that is not a dense layout with a unit last stride. Why:
// attention's q, k and v are usually permuted views of [B, T, heads, D] projections; outputs
// and gradients in that same layout make the permute + reshape around attention free.
Tensor empty_in_layout_of(const Shape& shape, const Tensor& like) {
  const int nd = like.dim();
  if (!like.is_non_overlapping_and_dense() || static_cast<int>(shape.size()) != nd || like.strides().back() != 1)
    return Tensor::empty(shape, like.dtype(), like.device());
  std::vector<int> order(static_cast<size_t>(nd));
  for (int d = 0; d < nd; ++d) order[static_cast<size_t>(d)] = d;
  std::stable_sort(order.begin(), order.end(), [&](int a, int b) { return like.strides()[a] > like.strides()[b]; });
  if (order.back() != nd - 1) return Tensor::empty(shape, like.dtype(), like.device());
  Shape physical(static_cast<size_t>(nd));
  std::vector<int64_t> inverse(static_cast<size_t>(nd));
  for (int i = 0; i < nd; ++i) {
    physical[static_cast<size_t>(i)] = shape[static_cast<size_t>(order[static_cast<size_t>(i)])];
    inverse[static_cast<size_t>(order[static_cast<size_t>(i)])] = i;
  }
  NoGradGuard no_grad;
  return permute(Tensor::empty(physical, like.dtype(), like.device()), inverse);
}

// A unit stride on the last dim, as the fused kernel needs (a copy only where it is not).
Tensor rows_contiguous(const Tensor& t) {
  return t.shape().back() <= 1 || t.strides().back() == 1 ? t : contiguous(t);
}

// Whether the fused kernel is the better choice on this device. On CUDA it computes in f32
// on the CUDA cores, so it is used where the composed products would run in f32 too (the
// default matmul precision); with TF32 or bf16 matmuls the composed form's products run on
// tensor cores, and until a GPU run has timed both (bench/gpu_check.sh prints the step with
// and without) that measured path stays.
bool fused_attention_pays(Device device) {
#ifdef MMGRAD_HAVE_CUDA
  if (device.type == DeviceType::CUDA) return cuda::matmul_precision() == cuda::MatmulPrecision::F32;
#endif
  (void)device;
  return true;
}

// scaled_dot_product_attention through the backend's fused kernel: one node whose forward
// keeps only each row's log-sum-exp and whose backward recomputes the probabilities.
Tensor fused_attention_node(const Tensor& q_in, const Tensor& k_in, const Tensor& v_in, const Tensor& attn_mask,
                            double sc, bool causal) {
  Tensor q = rows_contiguous(q_in), k = rows_contiguous(k_in), v = rows_contiguous(v_in);
  const int nd = q.dim();
  Shape out_shape = q.shape(), lse_shape = q.shape(), score_shape = q.shape();
  out_shape.back() = v.shape().back();
  lse_shape.pop_back();
  score_shape.back() = k.shape()[nd - 2];
  Tensor mask;
  if (attn_mask.defined()) {
    NoGradGuard no_grad;
    // A boolean mask (true: attend) becomes 0 / -inf, added to the scores like a float mask.
    mask = attn_mask.dtype() == DType::Bool
               ? where(attn_mask, scalar_tensor(0.0, q.dtype(), q.device()),
                       scalar_tensor(-std::numeric_limits<double>::infinity(), q.dtype(), q.device()))
               : attn_mask.detach();
    mask = expand(mask, score_shape);
  }
  Tensor out = empty_in_layout_of(out_shape, q);
  Tensor lse = Tensor::empty(lse_shape, q.dtype(), q.device());
  // The products' FLOPs as the composed matmuls would count them (a causal mask's skipped
  // half included, as model FLOPs are usually counted): Q K^T and P V forward; backward
  // recomputes Q K^T and forms dP, dQ, dK and dV.
  const uint64_t slices = static_cast<uint64_t>(lse.numel() / std::max<int64_t>(q.shape()[nd - 2], 1));
  const uint64_t TS = static_cast<uint64_t>(q.shape()[nd - 2] * k.shape()[nd - 2]);
  const uint64_t D = static_cast<uint64_t>(q.shape()[nd - 1]), Dv = static_cast<uint64_t>(v.shape()[nd - 1]);
  const uint64_t forward_flops = 2 * slices * TS * (D + Dv), backward_flops = 2 * slices * TS * (3 * D + 2 * Dv);
  if (out.numel() > 0) {
    MMGRAD_DISPATCH(attention, q.device(), out, lse, q, k, v, mask, sc, causal);
    detail::add_matmul_flops(forward_flops);
  }
  record("scaled_dot_product_attention", out, {q_in, k_in, v_in},
         [qs = SavedTensor(q), ks = SavedTensor(k), vs = SavedTensor(v), ms = SavedTensor(mask),
          lses = SavedTensor(lse), sc, causal, backward_flops](const Tensor& g) {
           const Tensor &q = qs.get(), &k = ks.get(), &v = vs.get();
           if (g.numel() == 0) {  // no output elements: nothing flows back
             NoGradGuard no_grad;
             return G{zeros_like(q), zeros_like(k), zeros_like(v)};
           }
           Tensor dq = empty_in_layout_of(q.shape(), q), dk = empty_in_layout_of(k.shape(), k),
                  dv = empty_in_layout_of(v.shape(), v);
           MMGRAD_DISPATCH(attention_backward, q.device(), dq, dk, dv, rows_contiguous(g), q, k, v, lses.get(),
                           ms.get(), sc, causal);
           detail::add_matmul_flops(backward_flops);
           return G{dq, dk, dv};
         });
  return out;
}
}  // namespace

Tensor scaled_dot_product_attention(const Tensor& q, const Tensor& k, const Tensor& v, bool causal,
                                    const Tensor& attn_mask, std::optional<double> scale) {
  const char* op = "scaled_dot_product_attention";
  detail::check_compatible(q, k, op);
  detail::check_compatible(q, v, op);
  detail::check_floating(q, op);
  if (q.dim() < 2 || k.dim() != q.dim() || v.dim() != q.dim())
    fail(op, "q, k and v must have the same rank, at least 2 ([..., T, D])",
         {describe("q", q), describe("k", k), describe("v", v)});
  const int nd = q.dim();
  const int64_t T = q.shape()[nd - 2], D = q.shape()[nd - 1], S = k.shape()[nd - 2];
  bool batch_ok = std::equal(q.shape().begin(), q.shape().end() - 2, k.shape().begin()) &&
                  std::equal(q.shape().begin(), q.shape().end() - 2, v.shape().begin());
  if (!batch_ok || k.shape()[nd - 1] != D || v.shape()[nd - 2] != S)
    fail(op, "expects q [..., T, D], k [..., S, D], v [..., S, Dv] with equal batch dims",
         {describe("q", q), describe("k", k), describe("v", v)});
  if (causal && T != S)
    fail(op, "the causal mask needs as many queries as keys", {describe("q", q), describe("k", k)});
  const double sc = scale ? *scale : 1.0 / std::sqrt(static_cast<double>(D));
  Shape score_shape = q.shape();
  score_shape.back() = S;
  if (attn_mask.defined()) {
    if (attn_mask.device() != q.device())
      fail(op, "attn_mask is on another device", {describe("q", q), describe("attn_mask", attn_mask)});
    if (attn_mask.dtype() != DType::Bool) detail::check_compatible(q, attn_mask, op);
    bool fits = attn_mask.dim() <= nd;
    for (int i = 0; fits && i < attn_mask.dim(); ++i) {
      int64_t m = attn_mask.shape()[attn_mask.dim() - 1 - i], s = score_shape[nd - 1 - i];
      fits = m == s || m == 1;
    }
    if (!fits)
      fail(op, "attn_mask must broadcast to the scores' shape " + shape_str(score_shape),
           {describe("q", q), describe("attn_mask", attn_mask)});
  }
  const bool additive_mask = attn_mask.defined() && attn_mask.dtype() != DType::Bool;
  // The fused kernel where the backend has one, for f32/f64, unless a float mask needs its
  // gradient (the kernel does not form dS as a tensor).
  const Backend& backend = backend_for(q.device());
  if (fused_attention() && backend.attention && backend.attention_backward && fused_attention_pays(q.device()) &&
      (q.dtype() == DType::F32 || q.dtype() == DType::F64) && !(additive_mask && attn_mask.requires_grad()))
    return fused_attention_node(q, k, v, attn_mask, sc, causal);

  // Forward with the graph off: the whole attention is one node below, with its own backward.
  Tensor out, kept_probs;
  {
    NoGradGuard no_grad;
    Tensor probs = attention_probs(q, k, sc, attn_mask, causal);
    out = matmul(probs, v);
    if (!recompute_in_backward()) kept_probs = probs;
  }
  // An additive mask is an input like q, k and v (a learned position bias needs its
  // gradient); a bool mask is not differentiable.
  Tensor mask_input = additive_mask ? attn_mask : Tensor();
  bool mask_grad = mask_input.defined() && mask_input.requires_grad();
  // Unless recompute_in_backward() is off, the probabilities are not kept: backward
  // recomputes them from q and k (one more [T, S] product and softmax per head), which
  // saves [..., T, S] per attention layer until backward, the largest activation of a layer
  // with short sequences.
  record(op, out, {q, k, v, mask_input},
         [qs = SavedTensor(q), ks = SavedTensor(k), vs = SavedTensor(v), masks = SavedTensor(attn_mask),
          ps = SavedTensor(kept_probs), sc, causal, mask_grad,
          mask_shape = mask_input.defined() ? mask_input.shape() : Shape{}](const Tensor& g) {
           Tensor P = ps.get().defined() ? ps.get() : attention_probs(qs.get(), ks.get(), sc, masks.get(), causal);
           // out = P V;  P = softmax(S);  S = scale * Q K^T + mask. Each [..., T, S] buffer is
           // dropped as soon as it is used, and the scale goes onto the smaller dQ and dK.
           Tensor dV = matmul(transpose(P, -1, -2), g);
           Tensor dS;
           {
             Tensor dP = contiguous(matmul(g, transpose(vs.get(), -1, -2)));
             dS = Tensor::empty(P.shape(), P.dtype(), P.device());
             MMGRAD_DISPATCH(softmax_backward, P.device(), dS, dP, P, false);
             P = Tensor();
           }
           Tensor dMask = mask_grad ? sum_to(dS, mask_shape) : Tensor();
           Tensor dQ = mul(matmul(dS, ks.get()), sc);
           Tensor dK = mul(matmul(transpose(dS, -1, -2), qs.get()), sc);
           return G{dQ, dK, dV, dMask};
         });
  return out;
}

Tensor dropout(const Tensor& x, double p, bool training, Generator* gen) {
  detail::check_defined(x, "dropout", "x");
  if (!(p >= 0 && p <= 1)) fail("dropout", fmt::format("probability {} is outside [0, 1]", p));
  if (!training || p == 0) return x;
  if (p == 1) return mul(x, 0.0);
  Tensor keep = ge(rand(x.shape(), x.dtype(), x.device(), gen), p);
  return mul(x, mul(keep.to(x.dtype()), 1.0 / (1.0 - p)));
}

Tensor embedding(const Tensor& weight, const Tensor& ids) {
  detail::check_defined(weight, "embedding", "weight");
  detail::check_defined(ids, "embedding", "ids");
  detail::check_integer_index(ids, "embedding");
  if (weight.dim() != 2) fail("embedding", "weight must be [V, W]", {describe("weight", weight)});
  Shape out_shape = ids.shape();
  out_shape.push_back(weight.shape()[1]);
  try {
    return reshape(index_select(weight, 0, reshape(ids, {-1})), out_shape);
  } catch (const Error& e) {
    if (e.op() != "index_select") throw;
    fail("embedding", e.detail() + " (a token id outside the vocabulary)",
         {describe("weight", weight), describe("ids", ids)});
  }
}

Tensor patch_embed(const Tensor& images, const Tensor& weight) {
  detail::check_compatible(images, weight, "patch_embed");
  if (images.dim() != 4 || weight.dim() != 4)
    fail("patch_embed", "expects images [B, C, H, W] and weight [W, C, P, P]",
         {describe("images", images), describe("weight", weight)});
  const int64_t B = images.shape()[0], C = images.shape()[1], H = images.shape()[2], Wi = images.shape()[3];
  const int64_t width = weight.shape()[0], P = weight.shape()[2];
  if (weight.shape()[1] != C || weight.shape()[3] != P || P <= 0 || H % P != 0 || Wi % P != 0)
    fail("patch_embed",
         fmt::format("weight must be [W, {}, P, P] with P dividing the image size {}x{}", C, H, Wi),
         {describe("images", images), describe("weight", weight)});
  // A stride-P, P x P convolution is a matmul over non-overlapping patches: split H and W
  // into (patch row, pixel row), move the patch indices first, flatten each patch.
  Tensor patches = reshape(images, {B, C, H / P, P, Wi / P, P});
  patches = permute(patches, {0, 2, 4, 1, 3, 5});
  patches = reshape(patches, {B * (H / P) * (Wi / P), C * P * P});
  Tensor out = matmul(patches, transpose(reshape(weight, {width, C * P * P}), 0, 1));
  return reshape(out, {B, (H / P) * (Wi / P), width});
}

}  // namespace mmgrad
