// Elementwise ops and their gradients. Binary ops broadcast (NumPy rules); the gradient of
// a broadcast operand is summed back to its shape with sum_to.
#include <cmath>

#include "autograd/op_helpers.h"

namespace mmgrad {
using autograd::record;
using autograd::SavedTensor;
using G = std::vector<Tensor>;

namespace {

Tensor unary_forward(UnaryOp op, const Tensor& x, double scalar = 0) {
  detail::check_defined(x, unary_op_name(op), "x");
  detail::check_floating(x, unary_op_name(op));
  Tensor out = Tensor::empty(x.shape(), x.dtype(), x.device());
  MMGRAD_DISPATCH(unary, x.device(), op, out, x, scalar);
  return out;
}

// Broadcasts a and b to one shape (free stride-0 views, not recorded: the gradient
// reduction happens in the op's backward).
std::pair<Tensor, Tensor> broadcast_pair(const Tensor& a, const Tensor& b, const char* op, Shape& shape) {
  detail::check_compatible(a, b, op);
  shape = detail::broadcast_or_fail(a, b, op);
  auto spread = [&](const Tensor& t) {
    if (t.shape() == shape) return t;
    size_t lead = shape.size() - t.dim();
    Shape strides(shape.size(), 0);
    for (size_t i = lead; i < shape.size(); ++i)
      strides[i] = t.shape()[i - lead] == shape[i] ? t.strides()[i - lead] : 0;
    return Tensor::alias(t, shape, strides, t.offset());
  };
  return {spread(a), spread(b)};
}

Tensor binary_forward(BinaryOp op, const Tensor& a, const Tensor& b) {
  Shape shape;
  auto [ea, eb] = broadcast_pair(a, b, binary_op_name(op), shape);
  if (a.dtype() == DType::BF16 || a.dtype() == DType::Bool)
    fail(binary_op_name(op), "bf16 and bool tensors do not support arithmetic (convert with to())",
         {describe("a", a), describe("b", b)});
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  MMGRAD_DISPATCH(binary, a.device(), op, out, ea, eb);
  return out;
}

Tensor scalar_like(const Tensor& t, double v) { return scalar_tensor(v, t.dtype(), t.device()); }

Tensor compare_forward(CompareOp op, const Tensor& a, const Tensor& b) {
  Shape shape;
  auto [ea, eb] = broadcast_pair(a, b, compare_op_name(op), shape);
  Tensor out = Tensor::empty(shape, DType::Bool, a.device());
  MMGRAD_DISPATCH(compare, a.device(), op, out, ea, eb);
  return out;
}

// An in-place source that overlaps the destination in another layout (x += x.t()) would be
// read after parts of it were overwritten: take a snapshot first. The same layout is safe,
// since each element is read before it is written.
Tensor snapshot_if_overlapping(const Tensor& self, const Tensor& src) {
  bool same_view = src.shape() == self.shape() && src.strides() == self.strides() &&
                   src.offset() == self.offset();
  if (!src.shares_storage(self) || same_view) return src;
  NoGradGuard no_grad;
  return clone(src);
}

// Refuses in-place writes that would corrupt the graph or lose a gradient (in-place ops are
// not recorded), then runs `write` and bumps the version so saved copies of this storage
// notice.
template <typename F>
Tensor& inplace(Tensor& self, const char* op, F write, const Tensor& src = Tensor()) {
  detail::check_defined(self, op, "self");
  if (GradMode::is_enabled() && self.requires_grad())
    fail(op, "in-place op on a tensor that requires grad while grad mode is on; wrap it in "
             "NoGradGuard (as optimizer updates do) or use the out-of-place op",
         {describe("self", self)});
  if (GradMode::is_enabled() && src.defined() && src.requires_grad())
    fail(op, "the source requires grad but in-place ops are not recorded, so its gradient "
             "would be lost; use the out-of-place op (or detach() the source)",
         {describe("self", self), describe("src", src)});
  for (int d = 0; d < self.dim(); ++d)
    if (self.strides()[d] == 0 && self.shape()[d] > 1)
      fail(op, "in-place write into a broadcast (expanded) view would write one element many "
               "times; make it contiguous() first",
           {describe("self", self)});
  write();
  self.bump_version();
  return self;
}

}  // namespace

// ------------------------------------------------------------------------------ unary
Tensor neg(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Neg, x);
  record("neg", y, {x}, [](const Tensor& g) { return G{neg(g)}; });
  return y;
}
Tensor abs(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Abs, x);
  record("abs", y, {x}, [x = SavedTensor(x)](const Tensor& g) { return G{mul(g, sign(x.get()))}; });
  return y;
}
Tensor sign(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Sign, x);
  record("sign", y, {x}, [](const Tensor& g) { return G{zeros_like(g)}; });
  return y;
}
Tensor exp(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Exp, x);
  record("exp", y, {x}, [y = SavedTensor(y)](const Tensor& g) { return G{mul(g, y.get())}; });
  return y;
}
Tensor log(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Log, x);
  record("log", y, {x}, [x = SavedTensor(x)](const Tensor& g) { return G{div(g, x.get())}; });
  return y;
}
Tensor sqrt(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Sqrt, x);
  record("sqrt", y, {x}, [y = SavedTensor(y)](const Tensor& g) { return G{div(mul(g, 0.5), y.get())}; });
  return y;
}
Tensor rsqrt(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Rsqrt, x);
  // d/dx x^-1/2 = -1/2 x^-3/2 = -1/2 y^3
  record("rsqrt", y, {x}, [y = SavedTensor(y)](const Tensor& g) {
    return G{mul(mul(g, -0.5), pow(y.get(), 3))};
  });
  return y;
}
Tensor pow(const Tensor& x, double exponent) {
  Tensor y = unary_forward(UnaryOp::Pow, x, exponent);
  record("pow", y, {x}, [x = SavedTensor(x), exponent](const Tensor& g) {
    if (exponent == 0) return G{zeros_like(g)};
    return G{mul(g, mul(pow(x.get(), exponent - 1), exponent))};
  });
  return y;
}
Tensor square(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Square, x);
  record("square", y, {x}, [x = SavedTensor(x)](const Tensor& g) { return G{mul(g, mul(x.get(), 2.0))}; });
  return y;
}
Tensor reciprocal(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Reciprocal, x);
  record("reciprocal", y, {x}, [y = SavedTensor(y)](const Tensor& g) {
    return G{neg(mul(g, square(y.get())))};
  });
  return y;
}
Tensor tanh(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Tanh, x);
  record("tanh", y, {x}, [y = SavedTensor(y)](const Tensor& g) {
    return G{binary_forward(BinaryOp::TanhBackward, g, y.get())};
  });
  return y;
}
Tensor sigmoid(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Sigmoid, x);
  record("sigmoid", y, {x}, [y = SavedTensor(y)](const Tensor& g) {
    return G{binary_forward(BinaryOp::SigmoidBackward, g, y.get())};
  });
  return y;
}
Tensor relu(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Relu, x);
  record("relu", y, {x}, [x = SavedTensor(x)](const Tensor& g) {
    return G{binary_forward(BinaryOp::ReluBackward, g, x.get())};
  });
  return y;
}
Tensor gelu(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Gelu, x);
  record("gelu", y, {x}, [x = SavedTensor(x)](const Tensor& g) {
    return G{binary_forward(BinaryOp::GeluBackward, g, x.get())};
  });
  return y;
}
Tensor quick_gelu(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::QuickGelu, x);
  record("quick_gelu", y, {x}, [x = SavedTensor(x)](const Tensor& g) {
    return G{binary_forward(BinaryOp::QuickGeluBackward, g, x.get())};
  });
  return y;
}
Tensor erf(const Tensor& x) {
  Tensor y = unary_forward(UnaryOp::Erf, x);
  // d/dx erf(x) = 2/sqrt(pi) exp(-x^2)
  record("erf", y, {x}, [x = SavedTensor(x)](const Tensor& g) {
    return G{mul(g, mul(exp(neg(square(x.get()))), 1.1283791670955126))};
  });
  return y;
}

// ----------------------------------------------------------------------------- binary
Tensor add(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Add, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record("add", y, {a, b}, [sa, sb](const Tensor& g) { return G{sum_to(g, sa), sum_to(g, sb)}; });
  return y;
}
Tensor sub(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Sub, a, b);
  Shape sa = a.shape(), sb = b.shape();
  record("sub", y, {a, b}, [sa, sb](const Tensor& g) { return G{sum_to(g, sa), sum_to(neg(g), sb)}; });
  return y;
}
Tensor mul(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Mul, a, b);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  record("mul", y, {a, b}, [sa = SavedTensor(gb ? a : Tensor()), sb = SavedTensor(ga ? b : Tensor()),
                            shape_a = a.shape(), shape_b = b.shape(), ga, gb](const Tensor& g) {
    return G{ga ? sum_to(mul(g, sb.get()), shape_a) : Tensor(),
             gb ? sum_to(mul(g, sa.get()), shape_b) : Tensor()};
  });
  return y;
}
Tensor div(const Tensor& a, const Tensor& b) {
  Tensor y = binary_forward(BinaryOp::Div, a, b);
  bool ga = a.requires_grad(), gb = b.requires_grad();
  record("div", y, {a, b}, [b_saved = SavedTensor(b), y_saved = SavedTensor(gb ? y : Tensor()),
                            shape_a = a.shape(), shape_b = b.shape(), ga, gb](const Tensor& g) {
    Tensor gdiv = div(g, b_saved.get());
    // d(a/b)/db = -a/b^2 = -y/b
    return G{ga ? sum_to(gdiv, shape_a) : Tensor(),
             gb ? sum_to(neg(mul(gdiv, y_saved.get())), shape_b) : Tensor()};
  });
  return y;
}

// The gradient of max/min goes to the chosen operand; on a tie it is split evenly.
static Tensor select_forward(BinaryOp op, const Tensor& a, const Tensor& b, const char* name) {
  Tensor y = binary_forward(op, a, b);
  record(name, y, {a, b}, [a = SavedTensor(a), b = SavedTensor(b), y = SavedTensor(y)](const Tensor& g) {
    Tensor pick_a = eq(a.get(), y.get()).to(g.dtype());
    Tensor pick_b = eq(b.get(), y.get()).to(g.dtype());
    Tensor share = add(pick_a, pick_b);
    Tensor ga = div(mul(g, pick_a), maximum(share, 1.0));
    Tensor gb = div(mul(g, pick_b), maximum(share, 1.0));
    return G{sum_to(ga, a.get().shape()), sum_to(gb, b.get().shape())};
  });
  return y;
}
Tensor maximum(const Tensor& a, const Tensor& b) { return select_forward(BinaryOp::Maximum, a, b, "maximum"); }
Tensor minimum(const Tensor& a, const Tensor& b) { return select_forward(BinaryOp::Minimum, a, b, "minimum"); }

Tensor add(const Tensor& a, double b) { return add(a, scalar_like(a, b)); }
Tensor sub(const Tensor& a, double b) { return sub(a, scalar_like(a, b)); }
Tensor mul(const Tensor& a, double b) { return mul(a, scalar_like(a, b)); }
Tensor div(const Tensor& a, double b) { return div(a, scalar_like(a, b)); }
Tensor maximum(const Tensor& a, double b) { return maximum(a, scalar_like(a, b)); }
Tensor minimum(const Tensor& a, double b) { return minimum(a, scalar_like(a, b)); }

Tensor operator+(const Tensor& a, const Tensor& b) { return add(a, b); }
Tensor operator-(const Tensor& a, const Tensor& b) { return sub(a, b); }
Tensor operator*(const Tensor& a, const Tensor& b) { return mul(a, b); }
Tensor operator/(const Tensor& a, const Tensor& b) { return div(a, b); }
Tensor operator+(const Tensor& a, double b) { return add(a, b); }
Tensor operator-(const Tensor& a, double b) { return sub(a, b); }
Tensor operator*(const Tensor& a, double b) { return mul(a, b); }
Tensor operator/(const Tensor& a, double b) { return div(a, b); }
Tensor operator+(double a, const Tensor& b) { return add(b, a); }
Tensor operator-(double a, const Tensor& b) { return add(neg(b), a); }
Tensor operator*(double a, const Tensor& b) { return mul(b, a); }
Tensor operator/(double a, const Tensor& b) { return mul(reciprocal(b), a); }
Tensor operator-(const Tensor& a) { return neg(a); }

// ------------------------------------------------------------------------ comparisons
Tensor eq(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::Eq, a, b); }
Tensor ne(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::Ne, a, b); }
Tensor lt(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::Lt, a, b); }
Tensor le(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::Le, a, b); }
Tensor gt(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::Gt, a, b); }
Tensor ge(const Tensor& a, const Tensor& b) { return compare_forward(CompareOp::Ge, a, b); }
Tensor eq(const Tensor& a, double b) { return eq(a, scalar_like(a, b)); }
Tensor ne(const Tensor& a, double b) { return ne(a, scalar_like(a, b)); }
Tensor lt(const Tensor& a, double b) { return lt(a, scalar_like(a, b)); }
Tensor le(const Tensor& a, double b) { return le(a, scalar_like(a, b)); }
Tensor gt(const Tensor& a, double b) { return gt(a, scalar_like(a, b)); }
Tensor ge(const Tensor& a, double b) { return ge(a, scalar_like(a, b)); }

Tensor where(const Tensor& cond, const Tensor& a, const Tensor& b) {
  detail::check_defined(cond, "where", "cond");
  if (cond.dtype() != DType::Bool)
    fail("where", "the condition must be a bool mask (from a comparison)", {describe("cond", cond)});
  detail::check_compatible(a, b, "where");
  if (cond.device() != a.device())
    fail("where", "condition and values are on different devices", {describe("cond", cond), describe("a", a)});
  Shape shape = broadcast_shapes(broadcast_shapes(cond.shape(), a.shape(), "where"), b.shape(), "where");
  Tensor out = Tensor::empty(shape, a.dtype(), a.device());
  {
    NoGradGuard no_grad;  // the expands below are only for the kernel
    MMGRAD_DISPATCH(where, a.device(), out, expand(cond, shape), expand(a, shape), expand(b, shape));
  }
  record("where", out, {a, b}, [c = SavedTensor(cond), sa = a.shape(), sb = b.shape()](const Tensor& g) {
    Tensor z = zeros({}, g.dtype(), g.device());
    return G{sum_to(where(c.get(), g, z), sa), sum_to(where(c.get(), z, g), sb)};
  });
  return out;
}
Tensor where(const Tensor& cond, const Tensor& a, double b) { return where(cond, a, scalar_like(a, b)); }

// ------------------------------------------------------------------------- in place
Tensor& copy_(Tensor& self, const Tensor& src) {
  detail::check_defined(src, "copy_", "src");
  return inplace(self, "copy_", [&] {
    Tensor s = snapshot_if_overlapping(self, src);
    if (s.device() != self.device()) s = to(s, self.device());
    NoGradGuard no_grad;
    if (detail::broadcast_or_fail(self, s, "copy_") != self.shape())
      fail("copy_", "the source does not broadcast to the destination's shape",
           {describe("self", self), describe("src", s)});
    Tensor spread = expand(s, self.shape());
    MMGRAD_DISPATCH(copy, self.device(), self, spread);
  }, src);
}

Tensor& fill_(Tensor& self, double value) {
  return inplace(self, "fill_", [&] {
    detail::check_value_fits(self.dtype(), value, "fill_");
    MMGRAD_DISPATCH(fill, self.device(), self, value);
  });
}
Tensor& zero_(Tensor& self) { return fill_(self, 0); }

static Tensor& binary_inplace(Tensor& self, BinaryOp op, const Tensor& other, const char* name) {
  return inplace(self, name, [&] {
    detail::check_compatible(self, other, name);
    NoGradGuard no_grad;
    if (detail::broadcast_or_fail(self, other, name) != self.shape())
      fail(name, "the operand does not broadcast to the destination's shape",
           {describe("self", self), describe("other", other)});
    Tensor spread = expand(snapshot_if_overlapping(self, other), self.shape());
    // Writing into self while reading it is safe elementwise: each element is read before
    // it is written, by the same iteration.
    MMGRAD_DISPATCH(binary, self.device(), op, self, self, spread);
  }, other);
}

Tensor& add_(Tensor& self, const Tensor& other, double alpha) {
  if (alpha == 1) return binary_inplace(self, BinaryOp::Add, other, "add_");
  NoGradGuard no_grad;
  return binary_inplace(self, BinaryOp::Add, mul(other, alpha), "add_");
}
Tensor& add_(Tensor& self, double value) { return binary_inplace(self, BinaryOp::Add, scalar_like(self, value), "add_"); }
Tensor& mul_(Tensor& self, const Tensor& other) { return binary_inplace(self, BinaryOp::Mul, other, "mul_"); }
Tensor& mul_(Tensor& self, double value) { return binary_inplace(self, BinaryOp::Mul, scalar_like(self, value), "mul_"); }
Tensor& div_(Tensor& self, const Tensor& other) { return binary_inplace(self, BinaryOp::Div, other, "div_"); }

namespace {
// adamw_update_'s operand checks; returns the gradient made contiguous.
Tensor checked_adamw_grad(const Tensor& param, const Tensor& grad, const Tensor& exp_avg, const Tensor& exp_avg_sq,
                          const char* op) {
  detail::check_floating(param, op);
  for (const Tensor* t : {&grad, static_cast<const Tensor*>(&exp_avg), static_cast<const Tensor*>(&exp_avg_sq)}) {
    detail::check_compatible(param, *t, op);
    if (t->shape() != param.shape())
      fail(op, "gradient and moments must have the parameter's shape",
           {describe("param", param), describe("grad", grad), describe("exp_avg", exp_avg),
            describe("exp_avg_sq", exp_avg_sq)});
  }
  for (const Tensor* t : {static_cast<const Tensor*>(&param), static_cast<const Tensor*>(&exp_avg), static_cast<const Tensor*>(&exp_avg_sq)})
    if (!t->is_contiguous())
      fail(op, "the parameter and its moments must be contiguous",
           {describe("param", param), describe("exp_avg", exp_avg), describe("exp_avg_sq", exp_avg_sq)});
  NoGradGuard no_grad;
  return contiguous(grad);
}
}  // namespace

void adamw_update_(Tensor& param, const Tensor& grad, Tensor& exp_avg, Tensor& exp_avg_sq, const AdamWStep& s) {
  const char* op = "adamw_update_";
  Tensor g = checked_adamw_grad(param, grad, exp_avg, exp_avg_sq, op);
  inplace(param, op, [&] {
    MMGRAD_DISPATCH(adamw_update, param.device(), param, g, exp_avg, exp_avg_sq, s.lr, s.beta1, s.beta2, s.eps,
                    s.decay, s.bias_correction1, s.bias_correction2);
  }, grad);
  exp_avg.bump_version();
  exp_avg_sq.bump_version();
}

void adamw_update_many_(std::vector<Tensor>& params, const std::vector<Tensor>& grads, std::vector<Tensor>& exp_avgs,
                        std::vector<Tensor>& exp_avg_sqs, const std::vector<double>& decays, const AdamWStep& s) {
  const char* op = "adamw_update_many_";
  const size_t n = params.size();
  if (grads.size() != n || exp_avgs.size() != n || exp_avg_sqs.size() != n || decays.size() != n)
    fail(op, fmt::format("expects one gradient, two moments and one decay per parameter ({} parameters, {} "
                         "gradients, {} and {} moments, {} decays)",
                         n, grads.size(), exp_avgs.size(), exp_avg_sqs.size(), decays.size()));
  if (n == 0) return;
  std::vector<Tensor> dense_grads;
  for (size_t i = 0; i < n; ++i) {
    dense_grads.push_back(checked_adamw_grad(params[i], grads[i], exp_avgs[i], exp_avg_sqs[i], op));
    if (i > 0) detail::check_compatible(params[0], params[i], op);
  }
  const Device device = params[0].device();
  if (!backend_for(device).adamw_update_many) {  // one kernel per parameter
    for (size_t i = 0; i < n; ++i) {
      AdamWStep step = s;
      step.decay = decays[i];
      adamw_update_(params[i], dense_grads[i], exp_avgs[i], exp_avg_sqs[i], step);
    }
    return;
  }
  // The in-place checks of every parameter first, then one fused update of all of them.
  for (size_t i = 0; i < n; ++i) inplace(params[i], op, [] {}, grads[i]);
  MMGRAD_DISPATCH(adamw_update_many, device, params, dense_grads, exp_avgs, exp_avg_sqs, decays, s.lr, s.beta1,
                  s.beta2, s.eps, s.bias_correction1, s.bias_correction2);
  for (size_t i = 0; i < n; ++i) {
    exp_avgs[i].bump_version();
    exp_avg_sqs[i].bump_version();
  }
}

}  // namespace mmgrad
