// The op case table and the helpers the three op harnesses share. See op_cases.h.
#include "tests/ops/op_cases.h"

#include <algorithm>
#include <cmath>
#include <cstdlib>
#include <limits>
#include <numeric>
#include <random>
#include <set>
#include <sstream>
#include <stdexcept>

#include "autograd/grad_mode.h"
#include "backends/backend.h"

namespace mmgrad::optest {

// ====================================================================== tolerance classes
//
// f32 vs f64 on the same f32-representable inputs of size O(1); u = 2^-24 ~ 6e-8 is the
// f32 unit roundoff. Each class states |y32 - y64| <= atol + rtol * |y64|:
//
// exact          views, copies, indexing, joins, comparisons, where, masks: values move
//                without arithmetic, so the f32 output must equal the f64 output bit for bit
//                (0, 0). Their gradients may add a few values (scatter-add of repeated
//                indices, sum_to of broadcasts): rtol 1e-6, atol 1e-6.
// elementwise    one libm-quality function per element (plus the backward's few products):
//                a few ulp, rtol 1e-6; atol 1e-6 for results that cancel to near 0.
//                Gradients: rtol 4e-6, atol 2e-6 (derivative formulas chain 2-4 roundings).
// reduction(K)   sums and dot products of K terms (sum, mean, var, matmul, linear, broadcast
//                gradients): rounding errors add up like a random walk, ~ u sqrt(K) times the
//                size of the terms, so rtol = atol = 1e-6 sqrt(K) (min K = 1), forward and
//                gradients alike.
// normalization(K) softmax, log_softmax, layer_norm, cross_entropy, attention over K
//                elements: exp, a K-term sum, a division or rsqrt, then (backward) another
//                K-term reduction: rtol = atol = 1e-5 + 2e-6 sqrt(K), gradients 2x that.
Precision exact_precision() { return {{0, 0}, {1e-6, 1e-6}}; }
Precision elementwise_precision() { return {{1e-6, 1e-6}, {4e-6, 2e-6}}; }
Precision reduction_precision(int64_t k) {
  double t = 1e-6 * std::sqrt(static_cast<double>(std::max<int64_t>(k, 1)));
  return {{t, t}, {t, t}};
}
Precision normalization_precision(int64_t k) {
  double t = 1e-5 + 2e-6 * std::sqrt(static_cast<double>(std::max<int64_t>(k, 1)));
  return {{t, t}, {2 * t, 2 * t}};
}
namespace {
// Elementwise forward, gradients summed over up to k broadcast copies.
Precision broadcast_precision(int64_t k) {
  Precision p = elementwise_precision();
  Precision r = reduction_precision(k);
  p.grad.rtol = std::max(p.grad.rtol, r.grad.rtol);
  p.grad.atol = std::max(p.grad.atol, r.grad.atol);
  return p;
}
}  // namespace

// ============================================================================== specs

InputSpec F(Shape shape, Domain domain, Layout layout) {
  InputSpec s;
  s.shape = std::move(shape);
  s.domain = domain;
  s.layout = layout;
  return s;
}
InputSpec Const(Shape shape, Domain domain, Layout layout) {
  InputSpec s = F(std::move(shape), domain, layout);
  s.requires_grad = false;
  return s;
}
InputSpec Idx(Shape shape, int64_t low, int64_t high, Layout layout) {
  InputSpec s;
  s.shape = std::move(shape);
  s.kind = Kind::Index;
  s.requires_grad = false;
  s.domain = Domain::Index;
  s.low = low;
  s.high = high;
  s.layout = layout;
  return s;
}
InputSpec Mask(Shape shape, Layout layout) {
  InputSpec s;
  s.shape = std::move(shape);
  s.kind = Kind::Bool;
  s.requires_grad = false;
  s.layout = layout;
  return s;
}

bool OpCase::differentiable() const {
  for (const InputSpec& s : inputs)
    if (s.kind == Kind::Float && s.requires_grad) return true;
  return false;
}

// =========================================================================== registry

namespace {

using Ts = std::vector<Tensor>;
using D = Domain;
using L = Layout;

class Registry {
 public:
  OpCase& add(std::string name, std::vector<std::string> ops, std::vector<InputSpec> inputs,
              OpFn fn, Precision precision) {
    OpCase c;
    c.name = std::move(name);
    c.ops = std::move(ops);
    c.inputs = std::move(inputs);
    c.fn = std::move(fn);
    c.precision = precision;
    cases_.push_back(std::move(c));
    return cases_.back();
  }
  std::vector<OpCase> take() { return std::move(cases_); }

 private:
  std::vector<OpCase> cases_;
};

// The other floating dtype (for to(dtype) round trips).
DType other_float(DType d) { return d == DType::F64 ? DType::F32 : DType::F64; }

// --------------------------------------------------------------- reference implementations
//
// Host references read the input values and compute in plain double loops (no gradient);
// composed references use simpler, separately tested ops, so their gradients come from
// different backward formulas than the fused op under test.

std::vector<double> host_values(const Tensor& t) {
  NoGradGuard no_grad;
  return to_vector<double>(detach(t));
}

// A constant tensor (no grad) with `like`'s device and the given dtype.
Tensor host_tensor(const std::vector<double>& v, const Shape& shape, DType dtype, Device device) {
  NoGradGuard no_grad;
  Tensor t = to(from_data<double>(v, shape), dtype);
  return device == Device::cpu() ? t : to(t, device);
}

Shape bcast(const Shape& a, const Shape& b) { return broadcast_shapes(a, b, "reference"); }

// The values of t broadcast to `shape`, row-major.
std::vector<double> spread(const Tensor& t, const Shape& shape) {
  NoGradGuard no_grad;
  return to_vector<double>(contiguous(expand(detach(t), shape)));
}

OpFn host_unary(std::function<double(double)> f) {
  return [f](const Ts& x) {
    std::vector<double> v = host_values(x[0]);
    for (double& e : v) e = f(e);
    return host_tensor(v, x[0].shape(), x[0].dtype(), x[0].device());
  };
}

// f(a, b) elementwise with broadcasting; `b_scalar` replaces a missing second input.
OpFn host_binary(std::function<double(double, double)> f, bool to_bool = false) {
  return [f, to_bool](const Ts& x) {
    Shape shape = bcast(x[0].shape(), x[1].shape());
    std::vector<double> a = spread(x[0], shape), b = spread(x[1], shape), out(a.size());
    for (size_t i = 0; i < a.size(); ++i) out[i] = f(a[i], b[i]);
    return host_tensor(out, shape, to_bool ? DType::Bool : x[0].dtype(), x[0].device());
  };
}
OpFn host_scalar(std::function<double(double, double)> f, double s, bool to_bool = false) {
  return [f, s, to_bool](const Ts& x) {
    std::vector<double> a = host_values(x[0]);
    for (double& e : a) e = f(e, s);
    return host_tensor(a, x[0].shape(), to_bool ? DType::Bool : x[0].dtype(), x[0].device());
  };
}

// Reduces the values of t over `dims` (empty: all): `f` maps the values of one reduced group,
// in increasing index order, to the result.
Tensor host_reduce(const Tensor& t, const std::vector<int64_t>& dims, bool keepdim, DType dtype,
                   const std::function<double(const std::vector<double>&)>& f) {
  const int nd = t.dim();
  std::vector<bool> reduced(nd, dims.empty());
  for (int64_t d : dims) reduced[normalize_dim(d, nd, "reference")] = true;
  Shape kept = t.shape(), dropped;
  for (int d = 0; d < nd; ++d) {
    if (reduced[d]) kept[d] = 1;
    else dropped.push_back(t.shape()[d]);
  }
  std::vector<double> v = host_values(t);
  std::vector<std::vector<double>> groups(numel_of(kept));
  Shape kept_strides = contiguous_strides(kept);
  for (int64_t i = 0; i < static_cast<int64_t>(v.size()); ++i) {
    int64_t rem = i, out = 0;
    for (int d = nd - 1; d >= 0; --d) {
      int64_t idx = rem % t.shape()[d];
      rem /= t.shape()[d];
      if (!reduced[d]) out += idx * kept_strides[d];
    }
    groups[out].push_back(v[i]);
  }
  std::vector<double> res(groups.size());
  for (size_t g = 0; g < groups.size(); ++g) res[g] = f(groups[g]);
  return host_tensor(res, keepdim ? kept : dropped, dtype, t.device());
}

double sum_of(const std::vector<double>& g) {
  long double acc = 0;
  for (double x : g) acc += x;
  return static_cast<double>(acc);
}
double mean_of(const std::vector<double>& g) { return sum_of(g) / static_cast<double>(g.size()); }
double var_of(const std::vector<double>& g, int64_t correction) {
  double m = mean_of(g);
  long double acc = 0;
  for (double x : g) acc += (x - m) * (x - m);
  return static_cast<double>(acc) / static_cast<double>(std::max<int64_t>(static_cast<int64_t>(g.size()) - correction, 0));
}
double max_of(const std::vector<double>& g) { return *std::max_element(g.begin(), g.end()); }
double min_of(const std::vector<double>& g) { return *std::min_element(g.begin(), g.end()); }
double argmax_of(const std::vector<double>& g) {
  return static_cast<double>(std::max_element(g.begin(), g.end()) - g.begin());  // first max
}
double argmin_of(const std::vector<double>& g) {
  return static_cast<double>(std::min_element(g.begin(), g.end()) - g.begin());
}

// matmul as a broadcast product summed over K: a [..., M, K, 1] * b [..., 1, K, N].
Tensor matmul_ref(const Tensor& a, const Tensor& b) {
  Tensor a2 = a.dim() == 1 ? unsqueeze(a, 0) : a;
  Tensor b2 = b.dim() == 1 ? unsqueeze(b, 1) : b;
  Tensor out = sum(mul(unsqueeze(a2, -1), unsqueeze(b2, -3)), {-2});
  if (a.dim() == 1 && b.dim() == 1) return reshape(out, {});
  if (a.dim() == 1) return squeeze(out, -2);
  if (b.dim() == 1) return squeeze(out, -1);
  return out;
}

// softmax by its definition, shifted by the (constant) max for range.
Tensor softmax_ref(const Tensor& x, int64_t dim, bool log) {
  if (x.dim() == 0) return reshape(softmax_ref(reshape(x, {1}), 0, log), {});
  Tensor shifted = sub(x, detach(amax(x, {dim}, true)));
  Tensor total = sum(mmgrad::exp(shifted), {dim}, true);
  return log ? sub(shifted, mmgrad::log(total)) : div(mmgrad::exp(shifted), total);
}

Tensor layer_norm_ref(const Tensor& x, const Tensor& w, const Tensor& b, double eps) {
  Tensor centred = sub(x, mean(x, {-1}, true));
  Tensor y = div(centred, mmgrad::sqrt(add(mean(square(centred), {-1}, true), eps)));
  if (w.defined()) y = mul(y, w);
  if (b.defined()) y = add(y, b);
  return y;
}

// Mean/sum/none of (1 - s) * nll + s * mean_c(-log p_c) over the rows that are not ignored.
Tensor cross_entropy_ref(const Tensor& logits, const Tensor& target, int64_t ignore,
                         double smoothing, Reduction reduction) {
  const int64_t N = logits.shape()[0], C = logits.shape()[1];
  std::vector<double> t = host_values(target), onehot(N * C, 0.0), keep(N, 0.0);
  double counted = 0;
  for (int64_t i = 0; i < N; ++i) {
    if (static_cast<int64_t>(t[i]) == ignore) continue;
    onehot[i * C + static_cast<int64_t>(t[i])] = 1;
    keep[i] = 1;
    counted += 1;
  }
  Tensor logp = softmax_ref(logits, 1, true);
  Tensor nll = neg(sum(mul(logp, host_tensor(onehot, {N, C}, logits.dtype(), logits.device())), {1}));
  Tensor smooth = neg(mean(logp, {1}));
  Tensor loss = add(mul(nll, 1 - smoothing), mul(smooth, smoothing));
  loss = mul(loss, host_tensor(keep, {N}, logits.dtype(), logits.device()));
  if (reduction == Reduction::None) return loss;
  if (reduction == Reduction::Sum) return sum(loss);
  return div(sum(loss), counted);
}

Tensor sdpa_ref(const Tensor& q, const Tensor& k, const Tensor& v, bool causal, const Tensor& mask,
                std::optional<double> scale) {
  const int64_t D = q.shape().back(), T = q.shape()[q.dim() - 2], S = k.shape()[k.dim() - 2];
  Tensor scores = mul(matmul_ref(q, transpose(k, -1, -2)), scale ? *scale : 1.0 / std::sqrt(static_cast<double>(D)));
  if (mask.defined()) scores = add(scores, mask);
  if (causal) {
    std::vector<double> m(T * S);
    for (int64_t i = 0; i < T; ++i)
      for (int64_t j = 0; j < S; ++j) m[i * S + j] = j > i ? -std::numeric_limits<double>::infinity() : 0.0;
    scores = add(scores, host_tensor(m, {T, S}, q.dtype(), q.device()));
  }
  return matmul_ref(softmax_ref(scores, -1, false), v);
}

// embedding as a one-hot matrix times the weight.
Tensor embedding_ref(const Tensor& weight, const Tensor& ids) {
  const int64_t V = weight.shape()[0];
  std::vector<double> id = host_values(ids), onehot(id.size() * V, 0.0);
  for (size_t i = 0; i < id.size(); ++i) onehot[i * V + static_cast<int64_t>(id[i])] = 1;
  Shape s = ids.shape();
  s.push_back(V);
  return matmul_ref(host_tensor(onehot, s, weight.dtype(), weight.device()), weight);
}

Tensor patch_embed_ref(const Tensor& images, const Tensor& weight) {
  const int64_t B = images.shape()[0], C = images.shape()[1], H = images.shape()[2], W = images.shape()[3];
  const int64_t O = weight.shape()[0], P = weight.shape()[2], PH = H / P, PW = W / P;
  std::vector<double> x = host_values(images), w = host_values(weight), out(B * PH * PW * O, 0.0);
  for (int64_t b = 0; b < B; ++b)
    for (int64_t ph = 0; ph < PH; ++ph)
      for (int64_t pw = 0; pw < PW; ++pw)
        for (int64_t o = 0; o < O; ++o) {
          double acc = 0;
          for (int64_t c = 0; c < C; ++c)
            for (int64_t i = 0; i < P; ++i)
              for (int64_t j = 0; j < P; ++j)
                acc += x[((b * C + c) * H + ph * P + i) * W + pw * P + j] * w[((o * C + c) * P + i) * P + j];
          out[((b * PH + ph) * PW + pw) * O + o] = acc;
        }
  return host_tensor(out, {B, PH * PW, O}, images.dtype(), images.device());
}

// out[..i.., j, ..k..] = x[..i.., index(..), ..k..] for index_select (1-D index) and gather.
Tensor index_select_ref(const Tensor& x, int64_t dim, const Tensor& index) {
  int d = normalize_dim(dim, x.dim(), "reference");
  std::vector<double> v = host_values(x), idx = host_values(index);
  int64_t outer = 1, inner = 1, n = x.shape()[d];
  for (int i = 0; i < d; ++i) outer *= x.shape()[i];
  for (int i = d + 1; i < x.dim(); ++i) inner *= x.shape()[i];
  std::vector<double> out;
  for (int64_t o = 0; o < outer; ++o)
    for (double j : idx)
      for (int64_t k = 0; k < inner; ++k) out.push_back(v[(o * n + static_cast<int64_t>(j)) * inner + k]);
  Shape s = x.shape();
  s[d] = static_cast<int64_t>(idx.size());
  return host_tensor(out, s, x.dtype(), x.device());
}
Tensor gather_ref(const Tensor& x, int64_t dim, const Tensor& index) {
  int d = normalize_dim(dim, x.dim(), "reference");
  std::vector<double> v = host_values(x), idx = host_values(index), out(idx.size());
  Shape xs = contiguous_strides(x.shape());
  for (int64_t i = 0; i < static_cast<int64_t>(idx.size()); ++i) {
    int64_t rem = i, off = 0;
    for (int a = index.dim() - 1; a >= 0; --a) {
      int64_t c = rem % index.shape()[a];
      rem /= index.shape()[a];
      off += (a == d ? static_cast<int64_t>(idx[i]) : c) * xs[a];
    }
    out[i] = v[off];
  }
  return host_tensor(out, index.shape(), x.dtype(), x.device());
}

void add_unary_cases(Registry& r) {
  struct Unary {
    const char* name;
    Tensor (*f)(const Tensor&);
    Domain domain;
    double (*ref)(double);
  };
  const Unary unary[] = {
      {"neg", [](const Tensor& x) { return neg(x); }, D::Normal,
       [](double x) { return -x; }},
      {"abs", [](const Tensor& x) { return mmgrad::abs(x); }, D::AwayFromZero,
       [](double x) { return std::abs(x); }},
      {"sign", [](const Tensor& x) { return sign(x); }, D::AwayFromZero,
       [](double x) { return static_cast<double>((x > 0) - (x < 0)); }},
      {"exp", [](const Tensor& x) { return mmgrad::exp(x); }, D::Normal,
       [](double x) { return std::exp(x); }},
      {"log", [](const Tensor& x) { return mmgrad::log(x); }, D::Positive,
       [](double x) { return std::log(x); }},
      {"sqrt", [](const Tensor& x) { return mmgrad::sqrt(x); }, D::Positive,
       [](double x) { return std::sqrt(x); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, D::Positive,
       [](double x) { return 1 / std::sqrt(x); }},
      {"square", [](const Tensor& x) { return square(x); }, D::Normal,
       [](double x) { return x * x; }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, D::AwayFromZero,
       [](double x) { return 1 / x; }},
      {"tanh", [](const Tensor& x) { return mmgrad::tanh(x); }, D::Normal,
       [](double x) { return std::tanh(x); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); }, D::Normal,
       [](double x) { return 1 / (1 + std::exp(-x)); }},
      {"relu", [](const Tensor& x) { return relu(x); }, D::AwayFromZero,
       [](double x) { return x > 0 ? x : 0.0; }},
      {"gelu", [](const Tensor& x) { return gelu(x); }, D::Normal,
       [](double x) { return 0.5 * x * (1 + std::erf(x / std::sqrt(2.0))); }},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); }, D::Normal,
       [](double x) { return x / (1 + std::exp(-1.702 * x)); }},
      {"erf", [](const Tensor& x) { return mmgrad::erf(x); }, D::Normal,
       [](double x) { return std::erf(x); }},
  };
  for (const Unary& u : unary) {
    auto f = u.f;
    OpFn fn = [f](const Ts& x) { return f(x[0]); };
    OpFn ref = host_unary(u.ref);
    std::string n = u.name;
    r.add(n, {n}, {F({3, 4}, u.domain)}, fn, elementwise_precision()).reference = ref;
    r.add(n + "_3d_permuted", {n}, {F({2, 3, 4}, u.domain, L::Permuted)}, fn,
          elementwise_precision()).reference = ref;
    r.add(n + "_0d", {n}, {F({}, u.domain)}, fn, elementwise_precision()).reference = ref;
  }
  struct PowCase {
    const char* name;
    double exponent;
    Domain domain;
  };
  const PowCase pows[] = {{"pow_2", 2, D::Normal},        {"pow_3", 3, D::Normal},
                          {"pow_0", 0, D::Normal},        {"pow_half", 0.5, D::Positive},
                          {"pow_m1_5", -1.5, D::Positive}, {"pow_2_5", 2.5, D::Positive}};
  for (const PowCase& p : pows) {
    double e = p.exponent;
    r.add(p.name, {"pow"}, {F({3, 4}, p.domain)}, [e](const Ts& x) { return pow(x[0], e); },
          elementwise_precision())
        .reference = host_unary([e](double x) { return std::pow(x, e); });
  }
  r.add("pow_3_3d_permuted", {"pow"}, {F({2, 3, 4}, D::Normal, L::Permuted)},
        [](const Ts& x) { return pow(x[0], 3); }, elementwise_precision());
}

void add_binary_cases(Registry& r) {
  struct Binary {
    const char* name;
    Tensor (*tt)(const Tensor&, const Tensor&);
    Tensor (*ts)(const Tensor&, double);
    Domain b_domain;
    double scalar;
    double (*ref)(double, double);
  };
  const Binary binary[] = {
      {"add", [](const Tensor& a, const Tensor& b) { return add(a, b); },
       [](const Tensor& a, double b) { return add(a, b); }, D::Normal, 1.5, [](double a, double b) { return a + b; }},
      {"sub", [](const Tensor& a, const Tensor& b) { return sub(a, b); },
       [](const Tensor& a, double b) { return sub(a, b); }, D::Normal, -0.75, [](double a, double b) { return a - b; }},
      {"mul", [](const Tensor& a, const Tensor& b) { return mul(a, b); },
       [](const Tensor& a, double b) { return mul(a, b); }, D::Normal, -2.5, [](double a, double b) { return a * b; }},
      {"div", [](const Tensor& a, const Tensor& b) { return div(a, b); },
       [](const Tensor& a, double b) { return div(a, b); }, D::AwayFromZero, 0.625, [](double a, double b) { return a / b; }},
      {"maximum", [](const Tensor& a, const Tensor& b) { return maximum(a, b); },
       [](const Tensor& a, double b) { return maximum(a, b); }, D::Normal, 0.3, [](double a, double b) { return std::max(a, b); }},
      {"minimum", [](const Tensor& a, const Tensor& b) { return minimum(a, b); },
       [](const Tensor& a, double b) { return minimum(a, b); }, D::Normal, -0.2, [](double a, double b) { return std::min(a, b); }},
  };
  for (const Binary& b : binary) {
    auto tt = b.tt;
    auto ts = b.ts;
    double s = b.scalar;
    OpFn fn = [tt](const Ts& x) { return tt(x[0], x[1]); };
    OpFn ref = host_binary(b.ref);
    OpFn sref = host_scalar(b.ref, s);
    std::string n = b.name;
    D bd = b.b_domain;
    r.add(n + "_same", {n}, {F({3, 4}), F({3, 4}, bd)}, fn, elementwise_precision()).reference = ref;
    r.add(n + "_bcast_3x1x4_5x4", {n}, {F({3, 1, 4}), F({5, 4}, bd)}, fn,
          broadcast_precision(5)).reference = ref;
    r.add(n + "_bcast_4_2x3x4", {n}, {F({4}), F({2, 3, 4}, bd)}, fn, broadcast_precision(6)).reference = ref;
    r.add(n + "_bcast_2x3x4_4", {n}, {F({2, 3, 4}, D::Normal, L::Permuted), F({4}, bd)}, fn,
          broadcast_precision(6)).reference = ref;
    r.add(n + "_0d_rhs", {n}, {F({3, 4}), F({}, bd)}, fn, broadcast_precision(12)).reference = ref;
    r.add(n + "_0d_lhs", {n}, {F({}), F({3, 4}, bd)}, fn, broadcast_precision(12)).reference = ref;
    r.add(n + "_0d_0d", {n}, {F({}), F({}, bd)}, fn, elementwise_precision()).reference = ref;
    r.add(n + "_expanded", {n}, {F({4, 3}, D::Normal, L::ExpandedFirst), F({4, 3}, bd)}, fn,
          broadcast_precision(4)).reference = ref;
    r.add(n + "_scalar", {n + "_scalar"}, {F({3, 4})}, [ts, s](const Ts& x) { return ts(x[0], s); },
          elementwise_precision()).reference = sref;
    r.add(n + "_scalar_0d", {n + "_scalar"}, {F({})}, [ts, s](const Ts& x) { return ts(x[0], s); },
          elementwise_precision()).reference = sref;
  }
  // Every operator overload, stacked into one output.
  r.add("operators", {"operator+", "operator-", "operator*", "operator/", "operator+(t,s)",
                      "operator-(t,s)", "operator*(t,s)", "operator/(t,s)", "operator+(s,t)",
                      "operator-(s,t)", "operator*(s,t)", "operator/(s,t)", "operator-(t)",
                      "stack"},
        {F({3, 4}), F({3, 4}, D::AwayFromZero)},
        [](const Ts& x) {
          const Tensor& a = x[0];
          const Tensor& b = x[1];
          return stack({a + b, a - b, a * b, a / b, a + 2.0, a - 2.0, a * 2.0, a / 2.0, 2.0 + a,
                        2.0 - a, 2.0 * a, 2.0 / b, -a},
                       0);
        },
        elementwise_precision());
  // Broadcasting operators and a chain of them.
  r.add("operators_bcast_chain", {"operator+", "operator*", "operator/", "operator-(s,t)"},
        {F({3, 1}), F({4}), F({3, 4}, D::AwayFromZero)},
        [](const Ts& x) { return (x[0] + x[1]) * x[2] / (1.5 - x[2]); },
        broadcast_precision(4));
}

void add_compare_where_cases(Registry& r) {
  struct Cmp {
    const char* name;
    Tensor (*tt)(const Tensor&, const Tensor&);
    Tensor (*ts)(const Tensor&, double);
    double (*ref)(double, double);
  };
  const Cmp cmps[] = {
      {"eq", [](const Tensor& a, const Tensor& b) { return eq(a, b); },
       [](const Tensor& a, double b) { return eq(a, b); },
       [](double a, double b) { return a == b ? 1.0 : 0.0; }},
      {"ne", [](const Tensor& a, const Tensor& b) { return ne(a, b); },
       [](const Tensor& a, double b) { return ne(a, b); },
       [](double a, double b) { return a != b ? 1.0 : 0.0; }},
      {"lt", [](const Tensor& a, const Tensor& b) { return lt(a, b); },
       [](const Tensor& a, double b) { return lt(a, b); },
       [](double a, double b) { return a < b ? 1.0 : 0.0; }},
      {"le", [](const Tensor& a, const Tensor& b) { return le(a, b); },
       [](const Tensor& a, double b) { return le(a, b); },
       [](double a, double b) { return a <= b ? 1.0 : 0.0; }},
      {"gt", [](const Tensor& a, const Tensor& b) { return gt(a, b); },
       [](const Tensor& a, double b) { return gt(a, b); },
       [](double a, double b) { return a > b ? 1.0 : 0.0; }},
      {"ge", [](const Tensor& a, const Tensor& b) { return ge(a, b); },
       [](const Tensor& a, double b) { return ge(a, b); },
       [](double a, double b) { return a >= b ? 1.0 : 0.0; }},
  };
  for (const Cmp& c : cmps) {
    auto tt = c.tt;
    auto ts = c.ts;
    std::string n = c.name;
    // Small integers make exact ties common, so eq/le/ge see both outcomes.
    r.add(n + "_same", {n}, {Const({3, 4}, D::SmallInt), Const({3, 4}, D::SmallInt)},
          [tt](const Ts& x) { return tt(x[0], x[1]); }, exact_precision())
        .reference = host_binary(c.ref, true);
    r.add(n + "_bcast", {n}, {Const({3, 1, 4}, D::SmallInt), Const({5, 4}, D::SmallInt)},
          [tt](const Ts& x) { return tt(x[0], x[1]); }, exact_precision())
        .reference = host_binary(c.ref, true);
    r.add(n + "_scalar", {n + "_scalar"}, {Const({3, 4}, D::SmallInt)},
          [ts](const Ts& x) { return ts(x[0], 1.0); }, exact_precision())
        .reference = host_scalar(c.ref, 1.0, true);
    r.add(n + "_scalar_frac", {n + "_scalar"}, {Const({2, 3, 4})},
          [ts](const Ts& x) { return ts(x[0], 0.25); }, exact_precision())
        .reference = host_scalar(c.ref, 0.25, true);
  }
  // Reference: cond * a + (1 - cond) * b with cond as 0/1 floats (differentiable in a, b).
  OpFn where_ref = [](const Ts& x) {
    Tensor c = to(x[0], x[1].dtype());
    return add(mul(c, x[1]), mul(1.0 - c, x[2]));
  };
  r.add("where_same", {"where"}, {Mask({3, 4}), F({3, 4}), F({3, 4})},
        [](const Ts& x) { return where(x[0], x[1], x[2]); }, exact_precision()).reference = where_ref;
  r.add("where_bcast", {"where"}, {Mask({3, 1, 4}), F({5, 4}), F({4})},
        [](const Ts& x) { return where(x[0], x[1], x[2]); }, broadcast_precision(15)).reference = where_ref;
  r.add("where_0d_cond", {"where"}, {Mask({}), F({3, 4}), F({})},
        [](const Ts& x) { return where(x[0], x[1], x[2]); }, broadcast_precision(12)).reference = where_ref;
  r.add("where_expanded_cond", {"where"}, {Mask({4, 3}, L::ExpandedFirst), F({4, 3}), F({4, 3})},
        [](const Ts& x) { return where(x[0], x[1], x[2]); }, exact_precision()).reference = where_ref;
  r.add("where_scalar", {"where_scalar"}, {Mask({3, 4}), F({3, 4})},
        [](const Ts& x) { return where(x[0], x[1], -0.5); }, exact_precision())
      .reference = [](const Ts& x) {
        Tensor c = to(x[0], x[1].dtype());
        return add(mul(c, x[1]), mul(1.0 - c, -0.5));
      };
  r.add("where_of_compare", {"where", "gt", "lt_scalar"}, {F({3, 4}), F({3, 4})},
        [](const Ts& x) {
          return where(gt(x[0], x[1]), x[0] * x[1], where(lt(x[1], 0.0), x[1], -0.5));
        },
        elementwise_precision());
}

void add_reduction_cases(Registry& r) {
  using Dims = std::vector<int64_t>;
  struct Red {
    std::string name;
    Dims dims;
    bool keepdim;
    int64_t k;  // elements per output
  };
  const Shape s = {2, 3, 4};
  const std::vector<Red> reds = {
      {"all", {}, false, 24},       {"all_keepdim", {}, true, 24}, {"dim0", {0}, false, 2},
      {"dim_last", {-1}, false, 4}, {"dim1_keepdim", {1}, true, 3}, {"dims02", {0, 2}, false, 8},
      {"dims02_keepdim", {0, 2}, true, 8}, {"dims_all_listed", {2, 0, 1}, false, 24},
  };
  for (const Red& d : reds) {
    Dims dims = d.dims;
    bool kd = d.keepdim;
    auto host = [dims, kd](double (*f)(const std::vector<double>&)) {
      return OpFn([=](const Ts& x) { return host_reduce(x[0], dims, kd, x[0].dtype(), f); });
    };
    r.add("sum_" + d.name, {"sum"}, {F(s, D::Normal, L::Permuted)},
          [dims, kd](const Ts& x) { return sum(x[0], dims, kd); }, reduction_precision(d.k))
        .reference = host(sum_of);
    r.add("mean_" + d.name, {"mean"}, {F(s)},
          [dims, kd](const Ts& x) { return mean(x[0], dims, kd); }, reduction_precision(d.k))
        .reference = host(mean_of);
    r.add("var_" + d.name, {"var"}, {F(s, D::Normal, L::Permuted)},
          [dims, kd](const Ts& x) { return var(x[0], dims, 1, kd); }, reduction_precision(d.k))
        .reference = host([](const std::vector<double>& g) { return var_of(g, 1); });
    r.add("amax_" + d.name, {"amax"}, {F(s, D::Distinct, L::Permuted)},
          [dims, kd](const Ts& x) { return amax(x[0], dims, kd); }, exact_precision())
        .reference = host(max_of);
    r.add("amin_" + d.name, {"amin"}, {F(s, D::Distinct)},
          [dims, kd](const Ts& x) { return amin(x[0], dims, kd); }, exact_precision())
        .reference = host(min_of);
  }
  r.add("sum_0d", {"sum"}, {F({})}, [](const Ts& x) { return sum(x[0]); }, exact_precision());
  r.add("sum_1d", {"sum"}, {F({7})}, [](const Ts& x) { return sum(x[0], {0}); },
        reduction_precision(7));
  r.add("mean_0d", {"mean"}, {F({})}, [](const Ts& x) { return mean(x[0]); }, exact_precision());
  r.add("var_correction0", {"var"}, {F({3, 5})}, [](const Ts& x) { return var(x[0], {-1}, 0); },
        reduction_precision(5))
      .reference = [](const Ts& x) {
        return host_reduce(x[0], {-1}, false, x[0].dtype(), [](const std::vector<double>& g) { return var_of(g, 0); });
      };
  r.add("var_correction2_keepdim", {"var"}, {F({4, 5}, D::Normal, L::Transposed)},
        [](const Ts& x) { return var(x[0], {0}, 2, true); }, reduction_precision(4))
      .reference = [](const Ts& x) {
        return host_reduce(x[0], {0}, true, x[0].dtype(), [](const std::vector<double>& g) { return var_of(g, 2); });
      };
  r.add("amax_0d", {"amax"}, {F({})}, [](const Ts& x) { return amax(x[0]); }, exact_precision());

  // max/min over one dim: the values (differentiable) and the indices.
  struct One {
    std::string name;
    int64_t dim;
    bool keepdim;
  };
  const std::vector<One> ones_ = {{"dim0", 0, false}, {"dim1_keepdim", 1, true},
                                  {"dim_last", -1, false}, {"dim_last_keepdim", -1, true}};
  for (const One& o : ones_) {
    int64_t dim = o.dim;
    bool kd = o.keepdim;
    auto host = [dim, kd](double (*f)(const std::vector<double>&), bool index) {
      return OpFn([=](const Ts& x) {
        return host_reduce(x[0], {dim}, kd, index ? DType::I64 : x[0].dtype(), f);
      });
    };
    r.add("max_values_" + o.name, {"max"}, {F(s, D::Distinct)},
          [dim, kd](const Ts& x) { return max(x[0], dim, kd).first; }, exact_precision())
        .reference = host(max_of, false);
    r.add("min_values_" + o.name, {"min"}, {F(s, D::Distinct, L::Permuted)},
          [dim, kd](const Ts& x) { return min(x[0], dim, kd).first; }, exact_precision())
        .reference = host(min_of, false);
    r.add("max_indices_" + o.name, {"max"}, {Const(s, D::Distinct, L::Permuted)},
          [dim, kd](const Ts& x) { return max(x[0], dim, kd).second; }, exact_precision())
        .reference = host(argmax_of, true);
    r.add("min_indices_" + o.name, {"min"}, {Const(s, D::Distinct)},
          [dim, kd](const Ts& x) { return min(x[0], dim, kd).second; }, exact_precision())
        .reference = host(argmin_of, true);
    r.add("argmax_" + o.name, {"argmax"}, {Const(s, D::Distinct)},
          [dim, kd](const Ts& x) { return argmax(x[0], dim, kd); }, exact_precision())
        .reference = host(argmax_of, true);
    r.add("argmin_" + o.name, {"argmin"}, {Const(s, D::Distinct, L::Permuted)},
          [dim, kd](const Ts& x) { return argmin(x[0], dim, kd); }, exact_precision())
        .reference = host(argmin_of, true);
  }
  r.add("max_values_0d", {"max"}, {F({})}, [](const Ts& x) { return max(x[0], 0).first; },
        exact_precision());
  r.add("max_indices_0d", {"max"}, {Const({})}, [](const Ts& x) { return max(x[0], 0).second; },
        exact_precision());
  // The max values and their indices in one graph: the indices pick from the input again.
  r.add("max_then_gather", {"max", "gather", "unsqueeze"}, {F({3, 5}, D::Distinct)},
        [](const Ts& x) {
          auto [values, idx] = max(x[0], 1, false);
          return values * gather(x[0], 1, unsqueeze(idx, 1)).squeeze(1);
        },
        elementwise_precision());

  r.add("sum_to_3x1", {"sum_to"}, {F(s)}, [](const Ts& x) { return sum_to(x[0], {3, 1}); },
        reduction_precision(8))
      .reference = [](const Ts& x) { return reshape(host_reduce(x[0], {0, 2}, true, x[0].dtype(), sum_of), {3, 1}); };
  r.add("sum_to_4", {"sum_to"}, {F(s, D::Normal, L::Permuted)},
        [](const Ts& x) { return sum_to(x[0], {4}); }, reduction_precision(6))
      .reference = [](const Ts& x) { return host_reduce(x[0], {0, 1}, false, x[0].dtype(), sum_of); };
  r.add("sum_to_2x1x4", {"sum_to"}, {F(s)}, [](const Ts& x) { return sum_to(x[0], {2, 1, 4}); },
        reduction_precision(3));
  r.add("sum_to_same", {"sum_to"}, {F(s)}, [](const Ts& x) { return sum_to(x[0], {2, 3, 4}); },
        exact_precision());
  r.add("sum_to_0d", {"sum_to"}, {F({3, 4})}, [](const Ts& x) { return sum_to(x[0], {}); },
        reduction_precision(12));
}

void add_matmul_cases(Registry& r) {
  OpFn mm = [](const Ts& x) { return matmul(x[0], x[1]); };
  OpFn mm_ref = [](const Ts& x) { return matmul_ref(x[0], x[1]); };
  Precision p = reduction_precision(4);  // K = 4 in all of them, except where stated
  r.add("matmul_2d_transposed", {"matmul"}, {F({3, 4}, D::Normal, L::Transposed), F({4, 5}, D::Normal, L::Transposed)}, mm, p).reference = mm_ref;
  r.add("matmul_2d_strided", {"matmul"}, {F({3, 4}), F({4, 5})}, mm, p).reference = mm_ref;
  r.add("matmul_2d_b_transposed_in_fn", {"matmul", "transpose"}, {F({3, 4}), F({5, 4})},
        [](const Ts& x) { return matmul(x[0], transpose(x[1], 0, 1)); }, p)
      .reference = [](const Ts& x) { return matmul_ref(x[0], transpose(x[1], 0, 1)); };
  r.add("matmul_2d_a_t", {"matmul", "Tensor::t"}, {F({4, 3}), F({4, 5}, D::Normal, L::StridedFirst)},
        [](const Ts& x) { return matmul(x[0].t(), x[1]); }, p)
      .reference = [](const Ts& x) { return matmul_ref(transpose(x[0], 0, 1), x[1]); };
  r.add("matmul_batched", {"matmul"}, {F({2, 3, 4}), F({2, 4, 5}, D::Normal, L::Permuted)}, mm, p).reference = mm_ref;
  r.add("matmul_batched_transposed", {"matmul"}, {F({2, 3, 4}, D::Normal, L::Transposed), F({2, 4, 5}, D::Normal, L::Transposed)}, mm, p).reference = mm_ref;
  r.add("matmul_bcast_batch", {"matmul"}, {F({2, 1, 3, 4}), F({3, 4, 2})}, mm, reduction_precision(6)).reference = mm_ref;
  r.add("matmul_bcast_expanded_batch", {"matmul"}, {F({3, 2, 4}, D::Normal, L::ExpandedFirst), F({3, 4, 2})}, mm, reduction_precision(3)).reference = mm_ref;
  r.add("matmul_3d_2d", {"matmul"}, {F({2, 3, 4}), F({4, 5})}, mm, reduction_precision(6)).reference = mm_ref;
  // Attention's products on heads as views of [B, T, H, D] projections: batch dims [B, H]
  // that no single stride walks (CUDA: the pointer-array batched GEMM), K^T transposed too.
  auto heads = [](const Tensor& t) { return permute(t, {0, 2, 1, 3}); };
  r.add("matmul_head_views_qk", {"matmul", "permute"}, {F({2, 3, 2, 4}), F({2, 4, 2, 4})},
        [heads](const Ts& x) { return matmul(heads(x[0]), transpose(heads(x[1]), -1, -2)); }, reduction_precision(4))
      .reference = [heads](const Ts& x) { return matmul_ref(heads(x[0]), transpose(heads(x[1]), -1, -2)); };
  r.add("matmul_head_views_pv", {"matmul", "permute"}, {F({2, 2, 3, 4}), F({2, 4, 2, 3})},
        [heads](const Ts& x) { return matmul(x[0], heads(x[1])); }, reduction_precision(6))
      .reference = [heads](const Ts& x) { return matmul_ref(x[0], heads(x[1])); };
  r.add("matmul_1d_2d", {"matmul"}, {F({4}), F({4, 5})}, mm, p).reference = mm_ref;
  r.add("matmul_2d_1d", {"matmul"}, {F({3, 4}), F({4})}, mm, p).reference = mm_ref;
  r.add("matmul_1d_1d", {"matmul"}, {F({6}), F({6})}, mm, reduction_precision(6)).reference = mm_ref;
  r.add("matmul_1d_3d", {"matmul"}, {F({4}), F({2, 4, 3})}, mm, reduction_precision(6)).reference = mm_ref;
  r.add("matmul_3d_1d", {"matmul"}, {F({2, 3, 4}), F({4})}, mm, reduction_precision(6)).reference = mm_ref;
  r.add("matmul_k1_outer", {"matmul"}, {F({5, 1}), F({1, 4})}, mm, p).reference = mm_ref;
  r.add("matmul_k_large", {"matmul"}, {F({2, 30}), F({30, 2})}, mm, reduction_precision(30)).reference = mm_ref;

  r.add("linear_bias", {"linear"}, {F({3, 4}), F({5, 4}), F({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return add(matmul_ref(x[0], transpose(x[1], 0, 1)), x[2]); };
  r.add("linear_no_bias", {"linear"}, {F({3, 4}), F({5, 4}, D::Normal, L::Transposed)},
        [](const Ts& x) { return linear(x[0], x[1]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return matmul_ref(x[0], transpose(x[1], 0, 1)); };
  r.add("linear_3d_input", {"linear"}, {F({2, 3, 4}), F({5, 4}), F({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(6))
      .reference = [](const Ts& x) { return add(matmul_ref(x[0], transpose(x[1], 0, 1)), x[2]); };
  r.add("linear_transposed_operands", {"linear"},
        {F({3, 4}, D::Normal, L::Transposed), F({5, 4}, D::Normal, L::Transposed), F({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return add(matmul_ref(x[0], transpose(x[1], 0, 1)), x[2]); };
  r.add("linear_1d_input", {"linear"}, {F({4}), F({5, 4}), F({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return add(matmul_ref(x[0], transpose(x[1], 0, 1)), x[2]); };
}

void add_nn_cases(Registry& r) {
  // softmax / log_softmax over the last and non-last dims.
  struct Sm {
    std::string name;
    Shape shape;
    int64_t dim;
    Layout layout;
    int64_t k;
  };
  const std::vector<Sm> sms = {{"last", {3, 5}, -1, L::Auto, 5},
                               {"dim0", {3, 5}, 0, L::Auto, 3},
                               {"3d_dim1", {2, 3, 4}, 1, L::Permuted, 3},
                               {"3d_last", {2, 3, 4}, 2, L::StridedLast, 4},
                               {"1d", {6}, 0, L::Auto, 6},
                               {"0d", {}, 0, L::Auto, 1}};
  for (const Sm& s : sms) {
    int64_t dim = s.dim;
    r.add("softmax_" + s.name, {"softmax"}, {F(s.shape, D::Normal, s.layout)},
          [dim](const Ts& x) { return softmax(x[0], dim); }, normalization_precision(s.k))
        .reference = [dim](const Ts& x) { return softmax_ref(x[0], dim, false); };
    r.add("log_softmax_" + s.name, {"log_softmax"}, {F(s.shape, D::Normal, s.layout)},
          [dim](const Ts& x) { return log_softmax(x[0], dim); }, normalization_precision(s.k))
        .reference = [dim](const Ts& x) { return softmax_ref(x[0], dim, true); };
  }
  // Large logits: the max-subtraction must keep exp() finite.
  InputSpec big = F({3, 5});
  big.values = [](int64_t i, double u) { return std::round((u - 0.5) * 64) + 80.0 * (i % 2); };
  r.add("softmax_large_logits", {"softmax"}, {big}, [](const Ts& x) { return softmax(x[0], -1); },
        normalization_precision(5))
      .reference = [](const Ts& x) { return softmax_ref(x[0], -1, false); };
  r.add("log_softmax_large_logits", {"log_softmax"}, {big},
        [](const Ts& x) { return log_softmax(x[0], -1); }, normalization_precision(5))
      .reference = [](const Ts& x) { return softmax_ref(x[0], -1, true); };

  // layer_norm with and without the affine parameters.
  r.add("layer_norm_affine", {"layer_norm"}, {F({3, 6}), F({6}), F({6})},
        [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, normalization_precision(6))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-5); };
  r.add("layer_norm_plain", {"layer_norm"}, {F({3, 6})},
        [](const Ts& x) { return layer_norm(x[0], Tensor(), Tensor()); }, normalization_precision(6))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], Tensor(), Tensor(), 1e-5); };
  r.add("layer_norm_weight_only", {"layer_norm"}, {F({4, 5}), F({5})},
        [](const Ts& x) { return layer_norm(x[0], x[1], Tensor()); }, normalization_precision(5))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], Tensor(), 1e-5); };
  r.add("layer_norm_bias_only", {"layer_norm"}, {F({4, 5}), F({5})},
        [](const Ts& x) { return layer_norm(x[0], Tensor(), x[1]); }, normalization_precision(5))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], Tensor(), x[1], 1e-5); };
  r.add("layer_norm_3d_eps", {"layer_norm"}, {F({2, 3, 5}, D::Normal, L::Permuted), F({5}), F({5})},
        [](const Ts& x) { return layer_norm(x[0], x[1], x[2], 1e-2); }, normalization_precision(5))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-2); };
  r.add("layer_norm_1d", {"layer_norm"}, {F({7}), F({7}), F({7})},
        [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, normalization_precision(7))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-5); };

  // The fused pre-LayerNorm MLP against the composition it replaces.
  for (bool quick : {false, true}) {
    r.add(quick ? "layer_norm_mlp_quick_gelu" : "layer_norm_mlp_gelu", {"layer_norm_mlp"},
          {F(quick ? Shape{5, 4} : Shape{2, 3, 4}), F({4}), F({4}), F({6, 4}), F({6}), F({3, 6}), F({3})},
          [quick](const Ts& x) { return layer_norm_mlp(x[0], x[1], x[2], 1e-5, x[3], x[4], x[5], x[6], quick); },
          normalization_precision(6))
        .reference = [quick](const Ts& x) {
          Tensor h = linear(layer_norm(x[0], x[1], x[2], 1e-5), x[3], x[4]);
          return linear(quick ? quick_gelu(h) : gelu(h), x[5], x[6]);
        };
  }

  // cross_entropy: logits [5, 4], targets in [0, 4), some rows ignored.
  const int64_t N = 5, C = 4;
  auto targets = [&] { return Idx({N}, 0, C); };
  auto ignored = [&](int64_t ignore) {
    InputSpec t = Idx({N}, 0, C);
    t.values = [ignore](int64_t i, double u) {
      return i % 3 == 1 ? static_cast<double>(ignore) : std::floor(u * 4);
    };
    return t;
  };
  Precision ce = normalization_precision(C * N);
  auto ce_fn = [](int64_t ignore, double smoothing, Reduction red) {
    return OpFn([=](const Ts& x) { return cross_entropy(x[0], x[1], ignore, smoothing, red); });
  };
  auto ce_ref = [](int64_t ignore, double smoothing, Reduction red) {
    return OpFn([=](const Ts& x) { return cross_entropy_ref(x[0], x[1], ignore, smoothing, red); });
  };
  r.add("cross_entropy_mean", {"cross_entropy"}, {F({N, C}), targets()}, ce_fn(-100, 0, Reduction::Mean), ce).reference = ce_ref(-100, 0, Reduction::Mean);
  r.add("cross_entropy_sum", {"cross_entropy"}, {F({N, C}), targets()}, ce_fn(-100, 0, Reduction::Sum), ce).reference = ce_ref(-100, 0, Reduction::Sum);
  r.add("cross_entropy_none", {"cross_entropy"}, {F({N, C}), targets()}, ce_fn(-100, 0, Reduction::None), ce).reference = ce_ref(-100, 0, Reduction::None);
  r.add("cross_entropy_ignore_mean", {"cross_entropy"}, {F({N, C}), ignored(-100)}, ce_fn(-100, 0, Reduction::Mean), ce).reference = ce_ref(-100, 0, Reduction::Mean);
  r.add("cross_entropy_ignore_sum", {"cross_entropy"}, {F({N, C}), ignored(-100)}, ce_fn(-100, 0, Reduction::Sum), ce).reference = ce_ref(-100, 0, Reduction::Sum);
  r.add("cross_entropy_ignore_none", {"cross_entropy"}, {F({N, C}), ignored(-100)}, ce_fn(-100, 0, Reduction::None), ce).reference = ce_ref(-100, 0, Reduction::None);
  r.add("cross_entropy_smooth_mean", {"cross_entropy"}, {F({N, C}), targets()}, ce_fn(-100, 0.2, Reduction::Mean), ce).reference = ce_ref(-100, 0.2, Reduction::Mean);
  r.add("cross_entropy_smooth_none", {"cross_entropy"}, {F({N, C}), targets()}, ce_fn(-100, 0.1, Reduction::None), ce).reference = ce_ref(-100, 0.1, Reduction::None);
  r.add("cross_entropy_smooth_ignore_sum", {"cross_entropy"}, {F({N, C}), ignored(-1)}, ce_fn(-1, 0.1, Reduction::Sum), ce).reference = ce_ref(-1, 0.1, Reduction::Sum);
  r.add("cross_entropy_smooth_ignore_mean", {"cross_entropy"}, {F({N, C}), ignored(-100)}, ce_fn(-100, 0.3, Reduction::Mean), ce).reference = ce_ref(-100, 0.3, Reduction::Mean);
  r.add("cross_entropy_full_smoothing", {"cross_entropy"}, {F({N, C}), targets()}, ce_fn(-100, 1.0, Reduction::Mean), ce).reference = ce_ref(-100, 1.0, Reduction::Mean);
  {
    // ignore_index is a real class (2): rows whose target is 2 drop out; row 0 always counts.
    InputSpec t = Idx({N}, 0, C);
    t.values = [](int64_t i, double u) { return i == 0 ? 0.0 : std::floor(u * 4); };
    r.add("cross_entropy_ignore_class", {"cross_entropy"}, {F({N, C}), t}, ce_fn(2, 0, Reduction::Mean), ce).reference = ce_ref(2, 0, Reduction::Mean);
  }
  {
    InputSpec t = targets();
    t.index_dtype = DType::I32;
    r.add("cross_entropy_i32_target", {"cross_entropy"}, {F({N, C}), t}, ce_fn(-100, 0, Reduction::Mean), ce).reference = ce_ref(-100, 0, Reduction::Mean);
  }
  r.add("cross_entropy_transposed_logits", {"cross_entropy", "transpose"}, {F({C, N}), targets()},
        [](const Ts& x) { return cross_entropy(transpose(x[0], 0, 1), x[1]); }, ce)
      .reference = [](const Ts& x) { return cross_entropy_ref(transpose(x[0], 0, 1), x[1], -100, 0, Reduction::Mean); };

  // scaled_dot_product_attention
  auto sdpa = [](bool causal, std::optional<double> scale, bool mask) {
    return OpFn([=](const Ts& x) {
      return scaled_dot_product_attention(x[0], x[1], x[2], causal, mask ? x[3] : Tensor(), scale);
    });
  };
  auto sdpa_r = [](bool causal, std::optional<double> scale, bool mask) {
    return OpFn([=](const Ts& x) { return sdpa_ref(x[0], x[1], x[2], causal, mask ? x[3] : Tensor(), scale); });
  };
  Precision at = normalization_precision(4);
  r.add("sdpa", {"scaled_dot_product_attention"}, {F({2, 3, 4}), F({2, 3, 4}), F({2, 3, 5})},
        sdpa(false, std::nullopt, false), at).reference = sdpa_r(false, std::nullopt, false);
  r.add("sdpa_causal", {"scaled_dot_product_attention"}, {F({2, 4, 3}), F({2, 4, 3}), F({2, 4, 2})},
        sdpa(true, std::nullopt, false), at).reference = sdpa_r(true, std::nullopt, false);
  r.add("sdpa_mask", {"scaled_dot_product_attention"},
        {F({2, 3, 4}), F({2, 3, 4}), F({2, 3, 5}), Const({3, 3})}, sdpa(false, std::nullopt, true), at).reference = sdpa_r(false, std::nullopt, true);
  {
    // -inf entries, never a whole row (column 0 stays open).
    InputSpec m = Const({3, 4});
    m.values = [](int64_t i, double u) {
      if (i % 4 == 0) return 0.0;
      return u < 0.4 ? -std::numeric_limits<double>::infinity() : (u - 0.7) * 2;
    };
    r.add("sdpa_mask_inf_t3_s4", {"scaled_dot_product_attention"},
          {F({2, 3, 4}), F({2, 4, 4}), F({2, 4, 3}), m}, sdpa(false, std::nullopt, true), at).reference = sdpa_r(false, std::nullopt, true);
  }
  // A float mask is an additive bias (e.g. a learned relative-position bias): it gets a
  // gradient like any other input (the sum over the batch of dL/dscores).
  r.add("sdpa_learned_bias", {"scaled_dot_product_attention"},
        {F({2, 3, 4}), F({2, 3, 4}), F({2, 3, 5}), F({3, 3})}, sdpa(false, std::nullopt, true), at)
      .reference = sdpa_r(false, std::nullopt, true);
  r.add("sdpa_causal_bcast_mask", {"scaled_dot_product_attention"},
        {F({2, 3, 4}), F({2, 3, 4}), F({2, 3, 4}), Const({1, 3})}, sdpa(true, std::nullopt, true), at).reference = sdpa_r(true, std::nullopt, true);
  r.add("sdpa_scale", {"scaled_dot_product_attention"}, {F({2, 3, 4}), F({2, 3, 4}), F({2, 3, 4})},
        sdpa(false, 0.7, false), at).reference = sdpa_r(false, 0.7, false);
  r.add("sdpa_causal_scale", {"scaled_dot_product_attention"}, {F({1, 4, 4}), F({1, 4, 4}), F({1, 4, 4})},
        sdpa(true, 1.3, false), at).reference = sdpa_r(true, 1.3, false);
  r.add("sdpa_t2_s5", {"scaled_dot_product_attention"}, {F({2, 2, 4}), F({2, 5, 4}), F({2, 5, 3})},
        sdpa(false, std::nullopt, false), at).reference = sdpa_r(false, std::nullopt, false);
  r.add("sdpa_4d_heads", {"scaled_dot_product_attention"},
        {F({1, 2, 3, 4}), F({1, 2, 3, 4}), F({1, 2, 3, 4}), Const({2, 1, 3})}, sdpa(false, std::nullopt, true), at).reference = sdpa_r(false, std::nullopt, true);
  r.add("sdpa_2d", {"scaled_dot_product_attention"}, {F({3, 4}), F({5, 4}), F({5, 2})},
        sdpa(false, std::nullopt, false), at).reference = sdpa_r(false, std::nullopt, false);
  // Heads split from one projection: q, k, v are permuted views of one tensor.
  r.add("sdpa_heads_from_views", {"scaled_dot_product_attention", "reshape", "permute", "select"},
        {F({3, 4, 4})},
        [](const Ts& x) {
          // x [3 (q/k/v), T=4, 2 heads * 2] -> each [2 heads, T, 2]
          auto part = [&](int64_t i) { return permute(reshape(select(x[0], 0, i), {4, 2, 2}), {1, 0, 2}); };
          return scaled_dot_product_attention(part(0), part(1), part(2), true);
        },
        at)
      .reference = [](const Ts& x) {
        auto part = [&](int64_t i) { return permute(reshape(select(x[0], 0, i), {4, 2, 2}), {1, 0, 2}); };
        return sdpa_ref(part(0), part(1), part(2), true, Tensor(), std::nullopt);
      };

  // dropout: identities, a fixed mask from a fresh seeded generator, p = 1.
  r.add("dropout_p0", {"dropout"}, {F({3, 4})}, [](const Ts& x) { return dropout(x[0], 0.0); },
        exact_precision()).reference = [](const Ts& x) { return clone(x[0]); };
  r.add("dropout_eval", {"dropout"}, {F({3, 4})},
        [](const Ts& x) { return dropout(x[0], 0.5, false); }, exact_precision())
      .reference = [](const Ts& x) { return clone(x[0]); };
  r.add("dropout_p03_fixed_seed", {"dropout"}, {F({4, 5})},
        [](const Ts& x) {
          Generator gen(20240607);
          return dropout(x[0], 0.3, true, &gen);
        },
        elementwise_precision());
  r.add("dropout_p1", {"dropout"}, {F({3, 4})}, [](const Ts& x) { return dropout(x[0], 1.0); },
        exact_precision()).reference = [](const Ts& x) { return mul(x[0], 0.0); };

  // embedding: repeated ids accumulate into the weight gradient.
  r.add("embedding_2d_ids", {"embedding"}, {F({6, 4}), Idx({2, 3}, 0, 6)},
        [](const Ts& x) { return embedding(x[0], x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return embedding_ref(x[0], x[1]); };
  r.add("embedding_repeated_ids", {"embedding"}, {F({3, 5}), Idx({8}, 0, 3)},
        [](const Ts& x) { return embedding(x[0], x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return embedding_ref(x[0], x[1]); };
  {
    InputSpec ids = Idx({4}, 0, 6);
    ids.index_dtype = DType::I32;
    r.add("embedding_i32_ids", {"embedding"}, {F({6, 3}, D::Normal, L::Transposed), ids},
          [](const Ts& x) { return embedding(x[0], x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return embedding_ref(x[0], x[1]); };
  }
  r.add("embedding_0d_id", {"embedding"}, {F({4, 3}), Idx({}, 0, 4)},
        [](const Ts& x) { return embedding(x[0], x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return embedding_ref(x[0], x[1]); };

  // patch_embed: a stride-P convolution.
  r.add("patch_embed", {"patch_embed"}, {F({1, 2, 4, 6}), F({3, 2, 2, 2})},
        [](const Ts& x) { return patch_embed(x[0], x[1]); }, reduction_precision(8))
      .reference = [](const Ts& x) { return patch_embed_ref(x[0], x[1]); };
  r.add("patch_embed_batch", {"patch_embed"}, {F({2, 1, 4, 4}, D::Normal, L::Permuted), F({2, 1, 2, 2})},
        [](const Ts& x) { return patch_embed(x[0], x[1]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return patch_embed_ref(x[0], x[1]); };
  r.add("patch_embed_p1", {"patch_embed"}, {F({1, 3, 2, 3}), F({4, 3, 1, 1})},
        [](const Ts& x) { return patch_embed(x[0], x[1]); }, reduction_precision(3))
      .reference = [](const Ts& x) { return patch_embed_ref(x[0], x[1]); };
}

void add_index_cases(Registry& r) {
  r.add("index_select_dim0", {"index_select"}, {F({4, 3}), Idx({5}, 0, 4)},
        [](const Ts& x) { return index_select(x[0], 0, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return index_select_ref(x[0], 0, x[1]); };
  r.add("index_select_3d_dim1", {"index_select"}, {F({2, 3, 4}, D::Normal, L::Permuted), Idx({4}, 0, 3)},
        [](const Ts& x) { return index_select(x[0], 1, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return index_select_ref(x[0], 1, x[1]); };
  {
    InputSpec idx = Idx({3}, 0, 4);
    idx.index_dtype = DType::I32;
    r.add("index_select_last_i32", {"index_select"}, {F({3, 4}), idx},
          [](const Ts& x) { return index_select(x[0], -1, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return index_select_ref(x[0], -1, x[1]); };
  }
  r.add("index_select_0d_index", {"index_select"}, {F({5, 2}), Idx({}, 0, 5)},
        [](const Ts& x) { return index_select(x[0], 0, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return index_select_ref(x[0], 0, x[1]); };

  r.add("gather_dim1", {"gather"}, {F({3, 4}), Idx({3, 5}, 0, 4)},
        [](const Ts& x) { return gather(x[0], 1, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return gather_ref(x[0], 1, x[1]); };
  r.add("gather_dim0", {"gather"}, {F({3, 4}, D::Normal, L::Transposed), Idx({2, 4}, 0, 3)},
        [](const Ts& x) { return gather(x[0], 0, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return gather_ref(x[0], 0, x[1]); };
  r.add("gather_3d_last", {"gather"}, {F({2, 3, 4}), Idx({2, 3, 2}, 0, 4)},
        [](const Ts& x) { return gather(x[0], -1, x[1]); }, exact_precision())
      .reference = [](const Ts& x) { return gather_ref(x[0], -1, x[1]); };

  r.add("concat_dim0", {"concat"}, {F({2, 3}), F({1, 3}), F({3, 3})},
        [](const Ts& x) { return concat({x[0], x[1], x[2]}, 0); }, exact_precision());
  r.add("concat_dim_last", {"concat"}, {F({2, 3}), F({2, 1}), F({2, 2})},
        [](const Ts& x) { return concat({x[0], x[1], x[2]}, -1); }, exact_precision());
  r.add("concat_3d_mid", {"concat"}, {F({2, 1, 3}, D::Normal, L::Permuted), F({2, 2, 3})},
        [](const Ts& x) { return concat({x[0], x[1]}, 1); }, exact_precision());
  r.add("concat_1d_repeated", {"concat"}, {F({3}), F({2})},
        [](const Ts& x) { return concat({x[0], x[1], x[0]}, 0); }, exact_precision());
  r.add("concat_single", {"concat"}, {F({2, 3})}, [](const Ts& x) { return concat({x[0]}, 1); },
        exact_precision());

  r.add("stack_dim0", {"stack"}, {F({2, 3}), F({2, 3}), F({2, 3})},
        [](const Ts& x) { return stack({x[0], x[1], x[2]}, 0); }, exact_precision());
  r.add("stack_dim_last", {"stack"}, {F({2, 3}), F({2, 3}, D::Normal, L::StridedFirst)},
        [](const Ts& x) { return stack({x[0], x[1]}, -1); }, exact_precision());
  r.add("stack_dim1", {"stack"}, {F({2, 3}), F({2, 3})},
        [](const Ts& x) { return stack({x[0], x[1], x[0]}, 1); }, exact_precision());
  r.add("stack_0d", {"stack"}, {F({}), F({})}, [](const Ts& x) { return stack({x[0], x[1]}, 0); },
        exact_precision());

  // split / chunk: each piece times a different constant, joined again.
  auto rejoin = [](const std::vector<Tensor>& parts, int64_t dim) {
    std::vector<Tensor> scaled;
    for (size_t i = 0; i < parts.size(); ++i) scaled.push_back(mul(parts[i], 1.0 + 0.5 * i));
    return concat(scaled, dim);
  };
  r.add("split_uneven", {"split", "concat"}, {F({3, 5})},
        [rejoin](const Ts& x) { return rejoin(split(x[0], 2, 1), 1); }, elementwise_precision());
  r.add("split_dim0", {"split", "concat"}, {F({6, 2}, D::Normal, L::StridedFirst)},
        [rejoin](const Ts& x) { return rejoin(split(x[0], 3, 0), 0); }, elementwise_precision());
  r.add("split_one_piece", {"split"}, {F({3, 4})},
        [](const Ts& x) {
          auto parts = split(x[0], 10, 0);
          return mul(parts.at(0), static_cast<double>(parts.size()) + 0.5);
        },
        elementwise_precision());
  r.add("split_pieces_used_twice", {"split", "add"}, {F({4, 3})},
        [](const Ts& x) {
          auto parts = split(x[0], 1, 0);
          return add(mul(parts[0], parts[3]), mul(parts[1], parts[0]));
        },
        elementwise_precision());
  r.add("chunk_even", {"chunk", "concat"}, {F({6, 4})},
        [rejoin](const Ts& x) { return rejoin(chunk(x[0], 3, 0), 0); }, elementwise_precision());
  r.add("chunk_uneven", {"chunk", "concat"}, {F({5, 3})},
        [rejoin](const Ts& x) { return rejoin(chunk(x[0], 2, 0), 0); }, elementwise_precision());
  r.add("chunk_more_than_size", {"chunk", "concat"}, {F({2, 3}, D::Normal, L::Transposed)},
        [rejoin](const Ts& x) { return rejoin(chunk(x[0], 5, 1), 1); }, elementwise_precision());
}

void add_view_cases(Registry& r) {
  Precision ex = exact_precision();
  r.add("reshape_merge", {"reshape"}, {F({2, 3, 4})}, [](const Ts& x) { return reshape(x[0], {6, 4}); }, ex);
  r.add("reshape_infer", {"reshape"}, {F({2, 3, 4}, D::Normal, L::Permuted)},
        [](const Ts& x) { return reshape(x[0], {4, -1}); }, ex);
  r.add("reshape_to_0d", {"reshape"}, {F({1, 1})}, [](const Ts& x) { return reshape(x[0], {}); }, ex);
  r.add("reshape_from_0d", {"reshape"}, {F({})}, [](const Ts& x) { return reshape(x[0], {1, 1, 1}); }, ex);
  r.add("view_split_last", {"view"}, {F({4, 6}, D::Normal, L::StridedFirst)},
        [](const Ts& x) { return view(x[0], {4, 2, 3}); }, ex);
  r.add("view_merge_leading", {"view"}, {F({2, 3, 4}, D::Normal, L::StridedLast)},
        [](const Ts& x) { return view(x[0], {6, 4}); }, ex);
  r.add("flatten_mid", {"flatten"}, {F({2, 3, 4})}, [](const Ts& x) { return flatten(x[0], 1, 2); }, ex);
  r.add("flatten_all", {"flatten"}, {F({2, 3, 4}, D::Normal, L::Permuted)},
        [](const Ts& x) { return flatten(x[0]); }, ex);
  r.add("flatten_0d", {"flatten"}, {F({})}, [](const Ts& x) { return flatten(x[0]); }, ex);
  r.add("transpose_0_2", {"transpose"}, {F({2, 3, 4})}, [](const Ts& x) { return transpose(x[0], 0, 2); }, ex);
  r.add("transpose_neg", {"transpose"}, {F({3, 4})}, [](const Ts& x) { return transpose(x[0], -1, -2); }, ex);
  r.add("tensor_t", {"Tensor::t"}, {F({2, 3, 4})}, [](const Ts& x) { return x[0].t(); }, ex);
  r.add("permute_cycle", {"permute"}, {F({2, 3, 4})}, [](const Ts& x) { return permute(x[0], {1, 2, 0}); }, ex);
  r.add("permute_negative_dims", {"permute"}, {F({2, 3, 4}, D::Normal, L::Permuted)},
        [](const Ts& x) { return permute(x[0], {-1, 0, 1}); }, ex);
  r.add("narrow_mid", {"narrow"}, {F({4, 5})}, [](const Ts& x) { return narrow(x[0], 1, 1, 3); }, ex);
  r.add("narrow_negative_start", {"narrow"}, {F({4, 5})}, [](const Ts& x) { return narrow(x[0], 0, -2, 2); }, ex);
  r.add("slice_step2", {"slice"}, {F({6, 5})}, [](const Ts& x) { return slice(x[0], 0, 1, 6, 2); }, ex);
  r.add("slice_step3_negative_start", {"slice"}, {F({3, 8})},
        [](const Ts& x) { return slice(x[0], 1, -7, 8, 3); }, ex);
  r.add("slice_clamped_end", {"slice"}, {F({5, 3}, D::Normal, L::StridedFirst)},
        [](const Ts& x) { return slice(x[0], 0, 2, 100); }, ex);
  r.add("select_last_index", {"select"}, {F({3, 4, 2})}, [](const Ts& x) { return select(x[0], 1, -1); }, ex);
  r.add("select_dim0", {"select"}, {F({3, 4}, D::Normal, L::Transposed)},
        [](const Ts& x) { return select(x[0], 0, 1); }, ex);
  r.add("expand_new_dims", {"expand"}, {F({3, 1})}, [](const Ts& x) { return expand(x[0], {2, 3, 4}); },
        reduction_precision(8));
  r.add("expand_keep_size", {"expand"}, {F({1, 4})}, [](const Ts& x) { return expand(x[0], {3, -1}); },
        reduction_precision(3));
  r.add("expand_0d", {"expand"}, {F({})}, [](const Ts& x) { return expand(x[0], {2, 3}); },
        reduction_precision(6));
  r.add("squeeze_size1", {"squeeze"}, {F({3, 1, 4})}, [](const Ts& x) { return squeeze(x[0], 1); }, ex);
  r.add("squeeze_not_size1", {"squeeze"}, {F({3, 4})}, [](const Ts& x) { return squeeze(x[0], 0); }, ex);
  r.add("unsqueeze_front", {"unsqueeze"}, {F({3, 4})}, [](const Ts& x) { return unsqueeze(x[0], 0); }, ex);
  r.add("unsqueeze_back", {"unsqueeze"}, {F({3, 4}, D::Normal, L::Transposed)},
        [](const Ts& x) { return unsqueeze(x[0], -1); }, ex);
  r.add("contiguous", {"contiguous"}, {F({3, 4})}, [](const Ts& x) { return contiguous(x[0]); }, ex);
  r.add("contiguous_of_transpose", {"contiguous", "transpose"}, {F({2, 3, 4})},
        [](const Ts& x) { return contiguous(transpose(x[0], 0, 1)); }, ex);
  r.add("clone", {"clone"}, {F({3, 4})}, [](const Ts& x) { return clone(x[0]); }, ex);
  {
    // Through the other float dtype and back: exact on f32-representable values. Finite
    // differences through an f32 rounding need a large step (the function is linear).
    OpCase& c = r.add("to_dtype_round_trip", {"to_dtype"}, {F({3, 4})},
                      [](const Ts& x) { return to(to(x[0], other_float(x[0].dtype())), x[0].dtype()); }, ex);
    c.gc_eps = 1e-2;
    c.gc_atol = 1e-4;
    c.gc_rtol = 1e-3;
  }
  {
    OpCase& c = r.add("to_dtype_compute_in_other", {"to_dtype", "mul"}, {F({3, 4}), F({3, 4})},
                      [](const Ts& x) {
                        DType o = other_float(x[0].dtype());
                        return to(mul(to(x[0], o), to(x[1], o)), x[0].dtype());
                      },
                      elementwise_precision());
    c.gc_eps = 1e-2;
    c.gc_atol = 1e-4;
    c.gc_rtol = 1e-3;
  }
  r.add("to_device_round_trip", {"to_device"}, {F({3, 4})},
        [](const Ts& x) { return to(to(x[0], Device::cpu()), x[0].device()); }, ex);
  r.add("detach", {"detach"}, {Const({3, 4})}, [](const Ts& x) { return detach(x[0]); }, ex);
  r.add("detach_blocks_gradient", {"detach", "mul"}, {F({3, 4}), Const({3, 4})},
        [](const Ts& x) { return mul(x[0], detach(x[1])); }, elementwise_precision());
  r.add("view_chain", {"permute", "slice", "select", "reshape", "unsqueeze", "expand"}, {F({4, 3, 5})},
        [](const Ts& x) {
          Tensor y = permute(x[0], {2, 0, 1});  // [5, 4, 3]
          y = slice(y, 0, 1, 5, 2);             // [2, 4, 3]
          y = select(y, 2, 1);                  // [2, 4]
          y = reshape(y, {8});
          return expand(unsqueeze(y, 0), {3, 8});
        },
        reduction_precision(3));
}

// In-place updates: not differentiable (refused on tensors that require grad), so these are
// forward-only cases for parity and precision.
void add_inplace_cases(Registry& r) {
  r.add("add_inplace", {"add_", "add_scalar_"}, {Const({3, 4}), Const({4})},
        [](const Ts& x) {
          Tensor y = clone(x[0]);
          add_(y, x[1]);
          add_(y, x[1], -0.5);
          add_(y, 0.25);
          return y;
        },
        elementwise_precision());
  r.add("mul_inplace", {"mul_", "mul_scalar_"}, {Const({3, 4}), Const({3, 1})},
        [](const Ts& x) {
          Tensor y = clone(x[0]);
          mul_(y, x[1]);
          mul_(y, -1.5);
          return y;
        },
        elementwise_precision());
  r.add("div_inplace", {"div_"}, {Const({3, 4}), Const({3, 4}, D::AwayFromZero)},
        [](const Ts& x) {
          Tensor y = clone(x[0]);
          div_(y, x[1]);
          return y;
        },
        elementwise_precision());
  r.add("adamw_update", {"adamw_update_"},
        {Const({3, 4}), Const({3, 4}), Const({3, 4}), Const({3, 4}, D::Positive)},
        [](const Ts& x) {
          Tensor p = clone(x[0]), m = clone(x[2]), v = clone(x[3]);
          adamw_update_(p, x[1], m, v, AdamWStep{0.1, 0.9, 0.999, 1e-8, 0.99, 0.19, 0.002});
          adamw_update_(p, x[1], m, v, AdamWStep{0.05, 0.9, 0.999, 1e-8, 1.0, 0.271, 0.003});
          return concat({flatten(p), flatten(m), flatten(v)}, 0);
        },
        elementwise_precision());
  r.add("inplace_into_strided_view", {"add_", "fill_", "zero_"}, {Const({4, 6}), Const({3, 1})},
        [](const Ts& x) {
          Tensor y = clone(x[0]);
          Tensor cols = transpose(slice(y, 1, 1, 6, 2), 0, 1);  // [3, 4], strided
          add_(cols, x[1], 2.0);
          Tensor row = select(y, 0, 2);
          fill_(row, 2.5);
          Tensor corner = narrow(narrow(y, 0, 0, 2), 1, 4, 2);
          zero_(corner);
          return y;
        },
        elementwise_precision());
  r.add("copy_inplace", {"copy_"}, {Const({3, 4}), Const({4}), Const({2, 3})},
        [](const Ts& x) {
          Tensor y = clone(x[0]);
          Tensor top = narrow(y, 0, 0, 2);
          copy_(top, x[1]);  // broadcast [4] -> [2, 4]
          Tensor block = transpose(narrow(narrow(y, 0, 0, 3), 1, 1, 2), 0, 1);  // [2, 3]
          copy_(block, to(x[2], other_float(x[2].dtype())));  // converts dtype
          return y;
        },
        exact_precision());
}

// Creation ops: forward only; a `like` input gives the dtype and device.
void add_creation_cases(Registry& r) {
  r.add("fills", {"zeros", "ones", "full", "scalar_tensor", "zeros_like", "ones_like", "full_like"},
        {Const({2, 3})},
        [](const Ts& x) {
          DType dt = x[0].dtype();
          Device dev = x[0].device();
          return concat({zeros({3}, dt, dev), ones({2}, dt, dev), full({2}, -2.5, dt, dev),
                         reshape(scalar_tensor(0.75, dt, dev), {1}), flatten(zeros_like(x[0])),
                         flatten(ones_like(x[0])), flatten(full_like(x[0], 3.25)),
                         flatten(add(x[0], full_like(x[0], 1.0)))},
                        0);
        },
        elementwise_precision());
  r.add("arange_float", {"arange"}, {Const({})},
        [](const Ts& x) {
          DType dt = x[0].dtype();
          Device dev = x[0].device();
          return concat({arange(0, 5, 1, dt, dev), arange(1, 2, 0.25, dt, dev),
                         arange(5, 0, -1.5, dt, dev), arange(3, 3, 1, dt, dev)},
                        0);
        },
        exact_precision());
  r.add("arange_int", {"arange"}, {Const({})},
        [](const Ts& x) { return arange(-3, 7, 2, DType::I64, x[0].device()); }, exact_precision());
  r.add("from_data", {"from_data"}, {Const({})},
        [](const Ts& x) {
          return add(from_data<double>({1.5, -2, 0.25, 8, 3, -0.125}, {2, 3}, x[0].device())
                         .to(x[0].dtype()),
                     x[0]);
        },
        elementwise_precision());
  r.add("rand_seeded", {"rand"}, {Const({})},
        [](const Ts& x) {
          Generator gen(99);
          return rand({4, 5}, x[0].dtype(), x[0].device(), &gen);
        },
        elementwise_precision());
  r.add("randn_seeded", {"randn"}, {Const({})},
        [](const Ts& x) {
          Generator gen(99);
          return randn({4, 5}, x[0].dtype(), x[0].device(), &gen);
        },
        elementwise_precision());
  r.add("randint_seeded", {"randint"}, {Const({})},
        [](const Ts& x) {
          Generator gen(99);
          return concat({randint(-3, 7, {12}, DType::I64, x[0].device(), &gen),
                         randint(0, 2, {12}, DType::I32, x[0].device(), &gen).to(DType::I64)},
                        0);
        },
        exact_precision());
}

// Only some inputs require grad: the backward formulas that skip (and do not save) the
// operands of the others must still give the right gradients.
void add_partial_grad_cases(Registry& r) {
  r.add("mul_grad_rhs_only", {"mul"}, {Const({3, 4}), F({4})},
        [](const Ts& x) { return mul(x[0], x[1]); }, broadcast_precision(3));
  r.add("mul_grad_lhs_only", {"mul"}, {F({3, 1}), Const({3, 4})},
        [](const Ts& x) { return mul(x[0], x[1]); }, broadcast_precision(4));
  r.add("div_grad_numerator_only", {"div"}, {F({3, 4}), Const({3, 4}, D::AwayFromZero)},
        [](const Ts& x) { return div(x[0], x[1]); }, elementwise_precision());
  r.add("div_grad_denominator_only", {"div"}, {Const({3, 4}), F({4}, D::AwayFromZero)},
        [](const Ts& x) { return div(x[0], x[1]); }, broadcast_precision(3));
  r.add("maximum_grad_one_side", {"maximum"}, {Const({3, 4}), F({3, 4})},
        [](const Ts& x) { return maximum(x[0], x[1]); }, elementwise_precision());
  r.add("matmul_grad_a_only", {"matmul"}, {F({3, 4}), Const({4, 5})},
        [](const Ts& x) { return matmul(x[0], x[1]); }, reduction_precision(5));
  r.add("matmul_grad_b_only", {"matmul"}, {Const({2, 3, 4}), F({4, 5})},
        [](const Ts& x) { return matmul(x[0], x[1]); }, reduction_precision(6));
  r.add("linear_grad_weight_only", {"linear"}, {Const({3, 4}), F({5, 4}), Const({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(4));
  r.add("linear_grad_input_only", {"linear"}, {F({2, 3, 4}), Const({5, 4}), Const({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(6));
  r.add("linear_grad_bias_only", {"linear"}, {Const({3, 4}), Const({5, 4}), F({5})},
        [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(4));
  r.add("layer_norm_grad_params_only", {"layer_norm"}, {Const({3, 6}), F({6}), F({6})},
        [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, normalization_precision(6))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-5); };
  r.add("layer_norm_grad_x_only", {"layer_norm"}, {F({3, 6}), Const({6}), Const({6})},
        [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, normalization_precision(6))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-5); };
  r.add("sdpa_grad_v_only", {"scaled_dot_product_attention"}, {Const({2, 3, 4}), Const({2, 3, 4}), F({2, 3, 4})},
        [](const Ts& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); },
        normalization_precision(4))
      .reference = [](const Ts& x) { return sdpa_ref(x[0], x[1], x[2], true, Tensor(), std::nullopt); };
  r.add("sdpa_grad_q_only", {"scaled_dot_product_attention"}, {F({2, 3, 4}), Const({2, 3, 4}), Const({2, 3, 4})},
        [](const Ts& x) { return scaled_dot_product_attention(x[0], x[1], x[2]); },
        normalization_precision(4))
      .reference = [](const Ts& x) { return sdpa_ref(x[0], x[1], x[2], false, Tensor(), std::nullopt); };
  r.add("where_grad_a_only", {"where"}, {Mask({3, 4}), F({3, 4}), Const({3, 4})},
        [](const Ts& x) { return where(x[0], x[1], x[2]); }, exact_precision());
  r.add("concat_grad_some", {"concat"}, {F({2, 3}), Const({1, 3}), F({2, 3})},
        [](const Ts& x) { return concat({x[0], x[1], x[2]}, 0); }, exact_precision());
}

// Exact ties (small integers): not differentiable there, so no gradcheck, but the tie rules
// (split the gradient evenly; pick one index) must not depend on the layout or the dtype.
void add_tie_cases(Registry& r) {
  auto tie = [&](std::string name, std::vector<std::string> ops, std::vector<InputSpec> in, OpFn fn) {
    r.add("ties_" + name, std::move(ops), std::move(in), std::move(fn), exact_precision()).gradcheck = false;
  };
  tie("amax_dim1", {"amax"}, {F({3, 5, 4}, D::SmallInt, L::Permuted)}, [](const Ts& x) { return amax(x[0], {1}); });
  tie("amin_all", {"amin"}, {F({4, 6}, D::SmallInt)}, [](const Ts& x) { return amin(x[0]); });
  tie("amax_dims02_keepdim", {"amax"}, {F({3, 4, 5}, D::SmallInt)},
      [](const Ts& x) { return amax(x[0], {0, 2}, true); });
  tie("max_values_dim0", {"max"}, {F({6, 5}, D::SmallInt, L::Transposed)},
      [](const Ts& x) { return max(x[0], 0).first; });
  tie("max_indices_dim0", {"max"}, {Const({6, 5}, D::SmallInt, L::Transposed)},
      [](const Ts& x) { return max(x[0], 0).second; });
  tie("min_indices_last", {"min"}, {Const({5, 6}, D::SmallInt, L::Permuted)},
      [](const Ts& x) { return min(x[0], -1).second; });
  tie("argmax_dim1", {"argmax"}, {Const({3, 7, 2}, D::SmallInt, L::Permuted)},
      [](const Ts& x) { return argmax(x[0], 1); });
  tie("argmin_dim0_large", {"argmin"}, {Const({257, 70}, D::SmallInt, L::Transposed)},
      [](const Ts& x) { return argmin(x[0], 0); });
  tie("maximum", {"maximum"}, {F({4, 5}, D::SmallInt), F({5}, D::SmallInt)},
      [](const Ts& x) { return maximum(x[0], x[1]); });
  tie("minimum_scalar", {"minimum_scalar"}, {F({4, 5}, D::SmallInt)},
      [](const Ts& x) { return minimum(x[0], 0.0); });
  tie("relu_at_zero", {"relu"}, {F({4, 5}, D::SmallInt)}, [](const Ts& x) { return relu(x[0]); });
  tie("abs_at_zero", {"abs"}, {F({4, 5}, D::SmallInt)}, [](const Ts& x) { return mmgrad::abs(x[0]); });
}

// Tensors with no elements: results of the right shape, gradients of the right shape.
void add_empty_cases(Registry& r) {
  Precision ex = exact_precision();
  r.add("empty_unary", {"exp"}, {F({0, 3})}, [](const Ts& x) { return mmgrad::exp(x[0]); }, ex);
  r.add("empty_binary_bcast", {"add"}, {F({0, 3}), F({3})}, [](const Ts& x) { return add(x[0], x[1]); }, ex);
  r.add("empty_sum_dim", {"sum"}, {F({0, 3})}, [](const Ts& x) { return sum(x[0], {0}); }, ex);
  r.add("empty_sum_all", {"sum"}, {F({2, 0})}, [](const Ts& x) { return sum(x[0]); }, ex);
  r.add("empty_matmul_k0", {"matmul"}, {F({2, 0}), F({0, 3})}, [](const Ts& x) { return matmul(x[0], x[1]); }, ex);
  r.add("empty_matmul_m0", {"matmul"}, {F({0, 4}), F({4, 3})}, [](const Ts& x) { return matmul(x[0], x[1]); }, ex);
  r.add("empty_concat_piece", {"concat"}, {F({2, 3}), F({0, 3}), F({1, 3})},
        [](const Ts& x) { return concat({x[0], x[1], x[2]}, 0); }, ex);
  r.add("empty_softmax", {"softmax"}, {F({0, 4})}, [](const Ts& x) { return softmax(x[0], -1); }, ex);
  r.add("empty_layer_norm", {"layer_norm"}, {F({0, 4}), F({4}), F({4})},
        [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, ex);
  r.add("empty_index_select", {"index_select"}, {F({3, 2}), Idx({0}, 0, 3)},
        [](const Ts& x) { return index_select(x[0], 0, x[1]); }, ex);
  r.add("empty_cross_entropy_sum", {"cross_entropy"}, {F({0, 4}), Idx({0}, 0, 4)},
        [](const Ts& x) { return cross_entropy(x[0], x[1], -100, 0, Reduction::Sum); }, ex);
  r.add("empty_slice", {"slice"}, {F({3, 4})}, [](const Ts& x) { return slice(x[0], 1, 2, 2); }, ex);
}

// Values far from 0, where naive formulas overflow or cancel.
void add_extreme_value_cases(Registry& r) {
  auto wide = [](double half_width) {
    InputSpec s = F({4, 5});
    s.values = [half_width](int64_t i, double u) {
      return std::round((u - 0.5) * 2 * half_width * 8) / 8 + (i % 2 ? 0.0625 : 0.0);
    };
    return s;
  };
  // Finite differences of a projection that sums terms spanning 70 orders of magnitude lose
  // the small terms' derivatives in rounding: the wide-range exp/log/sqrt/rsqrt cases are
  // checked by parity and f32-vs-f64 only.
  r.add("exp_wide", {"exp"}, {wide(80)}, [](const Ts& x) { return mmgrad::exp(x[0]); }, elementwise_precision())
      .gradcheck = false;
  r.add("tanh_wide", {"tanh"}, {wide(40)}, [](const Ts& x) { return mmgrad::tanh(x[0]); }, elementwise_precision());
  r.add("sigmoid_wide", {"sigmoid"}, {wide(90)}, [](const Ts& x) { return sigmoid(x[0]); }, elementwise_precision());
  r.add("gelu_wide", {"gelu"}, {wide(30)}, [](const Ts& x) { return gelu(x[0]); }, elementwise_precision());
  r.add("quick_gelu_wide", {"quick_gelu"}, {wide(60)}, [](const Ts& x) { return quick_gelu(x[0]); }, elementwise_precision());
  r.add("erf_wide", {"erf"}, {wide(8)}, [](const Ts& x) { return mmgrad::erf(x[0]); }, elementwise_precision());
  {
    InputSpec tiny = F({3, 4});
    // 2^-40 .. 2^40: derivatives up to 2^60 stay finite in f32.
    tiny.values = [](int64_t i, double u) { return std::ldexp(0.5 + u, static_cast<int>(i * 29 % 81) - 40); };
    r.add("log_tiny_and_large", {"log"}, {tiny}, [](const Ts& x) { return mmgrad::log(x[0]); }, elementwise_precision())
        .gradcheck = false;
    r.add("rsqrt_tiny_and_large", {"rsqrt"}, {tiny}, [](const Ts& x) { return rsqrt(x[0]); }, elementwise_precision())
        .gradcheck = false;
    r.add("sqrt_tiny_and_large", {"sqrt"}, {tiny}, [](const Ts& x) { return mmgrad::sqrt(x[0]); }, elementwise_precision())
        .gradcheck = false;
  }
  {
    InputSpec big = F({4, 5});
    big.values = [](int64_t i, double u) { return std::round((u - 0.5) * 40) + (i % 3 == 0 ? 90.0 : -90.0); };
    r.add("cross_entropy_large_logits", {"cross_entropy"}, {big, Idx({4}, 0, 5)},
          [](const Ts& x) { return cross_entropy(x[0], x[1], -100, 0.1, Reduction::None); },
          normalization_precision(5))
        .reference = [](const Ts& x) { return cross_entropy_ref(x[0], x[1], -100, 0.1, Reduction::None); };
    r.add("layer_norm_large_offset", {"layer_norm"}, {big, F({5}), F({5})},
          [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, normalization_precision(5))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-5); };
    r.add("var_large_offset", {"var"}, {big}, [](const Ts& x) { return var(x[0], {1}); },
          reduction_precision(5));
  }
}

// Sizes past the CPU kernels' thresholds (SIMD tails, GEMM blocks, reduce blocks, parallel
// grains): parity and precision only.
void add_large_cases(Registry& r) {
  auto big = [&](std::string name, std::vector<std::string> ops, std::vector<InputSpec> in, OpFn fn,
                 Precision p) -> OpCase& {
    OpCase& c = r.add("large_" + name, std::move(ops), std::move(in), std::move(fn), p);
    c.gradcheck = false;
    return c;
  };
  big("gelu", {"gelu"}, {F({300, 257})}, [](const Ts& x) { return gelu(x[0]); }, elementwise_precision());
  big("exp_tanh_sigmoid", {"exp", "tanh", "sigmoid"}, {F({200, 170}, D::Normal, L::Transposed)},
      [](const Ts& x) { return mul(mmgrad::exp(x[0]), add(mmgrad::tanh(x[0]), sigmoid(x[0]))); },
      elementwise_precision());
  big("mul_bcast", {"mul"}, {F({64, 1, 600}), F({3, 600})}, [](const Ts& x) { return mul(x[0], x[1]); },
      broadcast_precision(64));
  big("sum_dim0", {"sum"}, {F({1100, 64})}, [](const Ts& x) { return sum(x[0], {0}); },
      reduction_precision(1100));
  big("sum_last", {"sum"}, {F({64, 1100}, D::Normal, L::Transposed)}, [](const Ts& x) { return sum(x[0], {-1}); },
      reduction_precision(1100));
  big("sum_all", {"sum"}, {F({300, 300})}, [](const Ts& x) { return sum(x[0]); }, reduction_precision(90000));
  big("mean_mid", {"mean"}, {F({20, 300, 30})}, [](const Ts& x) { return mean(x[0], {1}); },
      reduction_precision(300));
  big("var_rows", {"var"}, {F({100, 700})}, [](const Ts& x) { return var(x[0], {1}); }, reduction_precision(700));
  big("amax_dim0", {"amax"}, {F({200, 300}, D::Distinct)}, [](const Ts& x) { return amax(x[0], {0}); },
      exact_precision());
  big("max_last", {"max"}, {F({300, 200}, D::Distinct, L::Transposed)},
      [](const Ts& x) { return max(x[0], -1).first; }, exact_precision());
  big("argmin_dim0", {"argmin"}, {Const({300, 200}, D::Distinct)},
      [](const Ts& x) { return argmin(x[0], 0); }, exact_precision());
  big("matmul", {"matmul"}, {F({70, 90}), F({90, 110})}, [](const Ts& x) { return matmul(x[0], x[1]); },
      reduction_precision(110));
  big("matmul_transposed", {"matmul"}, {F({130, 65}, D::Normal, L::Transposed), F({65, 47}, D::Normal, L::Transposed)},
      [](const Ts& x) { return matmul(x[0], x[1]); }, reduction_precision(130));
  big("matmul_batched", {"matmul"}, {F({3, 40, 50}), F({3, 50, 33})},
      [](const Ts& x) { return matmul(x[0], x[1]); }, reduction_precision(50));
  big("linear", {"linear"}, {F({4, 33, 96}), F({72, 96}), F({72})},
      [](const Ts& x) { return linear(x[0], x[1], x[2]); }, reduction_precision(132));
  big("softmax_last", {"softmax"}, {F({64, 700})}, [](const Ts& x) { return softmax(x[0], -1); },
      normalization_precision(700));
  big("log_softmax_dim0", {"log_softmax"}, {F({300, 40})}, [](const Ts& x) { return log_softmax(x[0], 0); },
      normalization_precision(300));
  big("layer_norm", {"layer_norm"}, {F({96, 130}), F({130}), F({130})},
      [](const Ts& x) { return layer_norm(x[0], x[1], x[2]); }, normalization_precision(130))
      .reference = [](const Ts& x) { return layer_norm_ref(x[0], x[1], x[2], 1e-5); };
  big("cross_entropy", {"cross_entropy"}, {F({600, 70}), Idx({600}, 0, 70)},
      [](const Ts& x) { return cross_entropy(x[0], x[1], -100, 0.1); }, normalization_precision(600));
  big("sdpa_causal", {"scaled_dot_product_attention"}, {F({4, 64, 32}), F({4, 64, 32}), F({4, 64, 32})},
      [](const Ts& x) { return scaled_dot_product_attention(x[0], x[1], x[2], true); },
      normalization_precision(64))
      .reference = [](const Ts& x) { return sdpa_ref(x[0], x[1], x[2], true, Tensor(), std::nullopt); };
  big("embedding", {"embedding"}, {F({50, 70}), Idx({3000}, 0, 50)},
      [](const Ts& x) { return embedding(x[0], x[1]); }, reduction_precision(3000 / 50))
      .reference = [](const Ts& x) { return embedding_ref(x[0], x[1]); };
  big("index_select_dim1", {"index_select"}, {F({40, 500}), Idx({2000}, 0, 500)},
      [](const Ts& x) { return index_select(x[0], 1, x[1]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return index_select_ref(x[0], 1, x[1]); };
  big("gather", {"gather"}, {F({300, 20}), Idx({300, 80}, 0, 20)},
      [](const Ts& x) { return gather(x[0], 1, x[1]); }, reduction_precision(4))
      .reference = [](const Ts& x) { return gather_ref(x[0], 1, x[1]); };
  big("patch_embed", {"patch_embed"}, {F({2, 3, 32, 32}), F({48, 3, 4, 4})},
      [](const Ts& x) { return patch_embed(x[0], x[1]); }, reduction_precision(128))
      .reference = [](const Ts& x) { return patch_embed_ref(x[0], x[1]); };
  big("contiguous_permuted", {"contiguous"}, {F({64, 64, 16}, D::Normal, L::Permuted)},
      [](const Ts& x) { return contiguous(permute(x[0], {2, 0, 1})); }, exact_precision());
  big("concat", {"concat"}, {F({300, 70}), F({300, 50})},
      [](const Ts& x) { return concat({x[0], x[1]}, 1); }, exact_precision());
  big("where_compare", {"where", "gt"}, {F({250, 160}), F({160})},
      [](const Ts& x) { return where(gt(x[0], x[1]), x[0], x[1]); }, reduction_precision(250));
  big("dropout", {"dropout"}, {F({300, 200})},
      [](const Ts& x) {
        Generator gen(5);
        return dropout(x[0], 0.25, true, &gen);
      },
      elementwise_precision());
}

std::vector<OpCase> build_cases() {
  Registry r;
  add_unary_cases(r);
  add_binary_cases(r);
  add_compare_where_cases(r);
  add_reduction_cases(r);
  add_matmul_cases(r);
  add_nn_cases(r);
  add_index_cases(r);
  add_view_cases(r);
  add_inplace_cases(r);
  add_creation_cases(r);
  add_partial_grad_cases(r);
  add_tie_cases(r);
  add_empty_cases(r);
  add_extreme_value_cases(r);
  add_large_cases(r);
  return r.take();
}

}  // namespace

const std::vector<OpCase>& all_op_cases() {
  static const std::vector<OpCase> cases = build_cases();
  return cases;
}

const OpCase& find_case(const std::string& name) {
  for (const OpCase& c : all_op_cases())
    if (c.name == name) return c;
  throw std::out_of_range("no op case named " + name);
}

std::vector<std::string> case_names(bool differentiable_only) {
  std::vector<std::string> names;
  for (const OpCase& c : all_op_cases())
    if (!differentiable_only || (c.differentiable() && c.gradcheck)) names.push_back(c.name);
  return names;
}

std::vector<std::string> reference_case_names() {
  std::vector<std::string> names;
  for (const OpCase& c : all_op_cases())
    if (c.reference) names.push_back(c.name);
  return names;
}

// f64 carries 2^29 (~5e8) times less rounding than f32; the class tolerance times 1e-5 leaves
// a wide margin for a reference that sums in another order or composes more roundings, and
// still catches any formula error (exact classes stay exact).
Tolerance reference_tolerance(const Tolerance& t) { return {t.rtol * 1e-5, t.atol * 1e-5}; }

const std::vector<std::string>& required_op_names() {
  static const std::vector<std::string> names = {
      // creation and conversion
      "zeros", "ones", "full", "zeros_like", "ones_like", "full_like", "scalar_tensor", "arange",
      "from_data", "rand", "randn", "randint", "to_dtype", "to_device", "contiguous", "clone",
      "detach",
      // views
      "reshape", "view", "flatten", "transpose", "permute", "narrow", "slice", "select", "expand",
      "squeeze", "unsqueeze", "Tensor::t",
      // elementwise
      "neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "pow", "square", "reciprocal", "tanh",
      "sigmoid", "relu", "gelu", "quick_gelu", "erf", "add", "sub", "mul", "div", "maximum",
      "minimum", "add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "maximum_scalar",
      "minimum_scalar", "operator+", "operator-", "operator*", "operator/", "operator+(t,s)",
      "operator-(t,s)", "operator*(t,s)", "operator/(t,s)", "operator+(s,t)", "operator-(s,t)",
      "operator*(s,t)", "operator/(s,t)", "operator-(t)", "eq", "ne", "lt", "le", "gt", "ge",
      "eq_scalar", "ne_scalar", "lt_scalar", "le_scalar", "gt_scalar", "ge_scalar", "where",
      "where_scalar",
      // in place
      "add_", "add_scalar_", "mul_", "mul_scalar_", "div_", "fill_", "zero_", "copy_", "adamw_update_",
      // reductions
      "sum", "mean", "var", "amax", "amin", "max", "min", "argmax", "argmin", "sum_to",
      // linear algebra
      "matmul", "linear",
      // neural-net ops
      "softmax", "log_softmax", "layer_norm", "layer_norm_mlp", "cross_entropy", "scaled_dot_product_attention",
      "dropout", "embedding", "patch_embed",
      // indexing
      "index_select", "gather", "concat", "stack", "split", "chunk"};
  return names;
}

// ===================================================================== harness helpers

uint64_t base_seed() {
  static const uint64_t seed = [] {
    const char* env = std::getenv("MMGRAD_OPS_SEED");
    if (env && *env) return static_cast<uint64_t>(std::strtoull(env, nullptr, 0));
    return static_cast<uint64_t>(0x6f70746573747331ull);
  }();
  return seed;
}

uint64_t case_seed(const std::string& name) {
  uint64_t h = 1469598103934665603ull;  // FNV-1a
  for (unsigned char ch : name) {
    h ^= ch;
    h *= 1099511628211ull;
  }
  return h ^ (base_seed() * 0x9E3779B97F4A7C15ull);
}

namespace {

// The layout a spec's non-contiguous variant really gets for its rank.
Layout resolve_layout(const InputSpec& s) {
  const size_t nd = s.shape.size();
  Layout l = s.layout;
  if (l == Layout::Contiguous) return l;
  if (nd == 0) return Layout::Offset;
  if (l == Layout::Auto) l = nd >= 2 ? Layout::TransposedStrided : Layout::StridedLast;
  if (nd < 2 && (l == Layout::Transposed || l == Layout::TransposedStrided || l == Layout::Permuted))
    l = Layout::StridedLast;
  return l;
}

float round_to_f32(double v) { return static_cast<float>(v); }

}  // namespace

std::vector<std::vector<double>> make_values(const OpCase& c, uint64_t seed) {
  std::vector<std::vector<double>> all;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    const InputSpec& s = c.inputs[k];
    std::mt19937_64 rng(seed + 0x9E3779B97F4A7C15ull * (k + 1));
    std::uniform_real_distribution<double> unif(0.0, 1.0);
    std::normal_distribution<double> normal(0.0, 1.0);
    // An ExpandedFirst input repeats its values along dim 0: draw one slice.
    Shape draw_shape = s.shape;
    bool expanded = resolve_layout(s) == Layout::ExpandedFirst;
    if (expanded) draw_shape[0] = 1;
    const int64_t n = numel_of(draw_shape);
    std::vector<double> v(n);
    if (s.kind == Kind::Bool) {
      for (int64_t i = 0; i < n; ++i) v[i] = unif(rng) < 0.5 ? 1.0 : 0.0;
    } else if (s.values) {
      for (int64_t i = 0; i < n; ++i) v[i] = s.values(i, unif(rng));
    } else if (s.domain == Domain::Distinct) {
      std::vector<int64_t> perm(n);
      std::iota(perm.begin(), perm.end(), 0);
      std::shuffle(perm.begin(), perm.end(), rng);
      for (int64_t i = 0; i < n; ++i) v[i] = (static_cast<double>(perm[i]) - n / 2) * 0.125;
    } else {
      for (int64_t i = 0; i < n; ++i) {
        double u = unif(rng);
        switch (s.domain) {
          case Domain::Normal: v[i] = normal(rng); break;
          case Domain::Positive: v[i] = 0.5 + 1.5 * u; break;
          case Domain::AwayFromZero: v[i] = (unif(rng) < 0.5 ? -1 : 1) * (0.5 + u); break;
          case Domain::SmallInt: v[i] = std::floor(u * 5) - 2; break;
          case Domain::Index:
            v[i] = static_cast<double>(s.low + static_cast<int64_t>(u * static_cast<double>(s.high - s.low)));
            break;
          case Domain::Distinct: break;
        }
      }
    }
    if (s.kind == Kind::Float)
      for (double& x : v) x = round_to_f32(x);
    if (expanded) {
      std::vector<double> full_v;
      for (int64_t r = 0; r < s.shape[0]; ++r) full_v.insert(full_v.end(), v.begin(), v.end());
      v = std::move(full_v);
    }
    all.push_back(std::move(v));
  }
  return all;
}

namespace {

// An uninitialised-looking view of `shape` in `layout`: its storage is filled with `pad`.
Tensor strided_view(const Shape& shape, Layout layout, DType dt, Device dev, double pad) {
  const int nd = static_cast<int>(shape.size());
  switch (layout) {
    case Layout::Transposed: {
      Shape b = shape;
      std::swap(b[nd - 1], b[nd - 2]);
      return transpose(full(b, pad, dt, dev), -1, -2);
    }
    case Layout::Permuted: {
      Shape b(shape.rbegin(), shape.rend());
      std::vector<int64_t> dims(nd);
      for (int i = 0; i < nd; ++i) dims[i] = nd - 1 - i;
      return permute(full(b, pad, dt, dev), dims);
    }
    case Layout::StridedLast: {
      Shape b = shape;
      b[nd - 1] = 2 * shape[nd - 1] + 1;
      return slice(full(b, pad, dt, dev), -1, 1, b[nd - 1], 2);
    }
    case Layout::StridedFirst: {
      Shape b = shape;
      b[0] = 2 * shape[0] + 1;
      return slice(full(b, pad, dt, dev), 0, 1, b[0], 2);
    }
    case Layout::TransposedStrided: {
      Shape t = shape;
      std::swap(t[nd - 1], t[nd - 2]);
      return transpose(strided_view(t, Layout::StridedLast, dt, dev, pad), -1, -2);
    }
    case Layout::ExpandedFirst: {
      Shape b = shape;
      b[0] = 1;
      return expand(full(b, pad, dt, dev), shape);
    }
    case Layout::Offset: {
      const int64_t off = 3;
      Tensor base = full({numel_of(shape) + 2 * off}, pad, dt, dev);
      return Tensor::alias(base, shape, contiguous_strides(shape), off);
    }
    case Layout::Auto:
    case Layout::Contiguous:
      break;
  }
  return full(shape, pad, dt, dev);
}

}  // namespace

std::vector<Tensor> make_inputs(const OpCase& c, const std::vector<std::vector<double>>& values,
                                const Variant& v) {
  NoGradGuard no_grad;
  std::vector<Tensor> inputs;
  for (size_t k = 0; k < c.inputs.size(); ++k) {
    const InputSpec& s = c.inputs[k];
    DType dt = s.kind == Kind::Float ? v.dtype : s.kind == Kind::Index ? s.index_dtype : DType::Bool;
    Tensor logical = to(from_data<double>(values[k], s.shape), dt);
    if (v.device != Device::cpu()) logical = to(logical, v.device);
    Tensor t = logical;
    Layout layout = resolve_layout(s);
    const bool grad = s.kind == Kind::Float && s.requires_grad;
    if (layout == Layout::ExpandedFirst && grad && !v.allow_expanded_grad)
      layout = Layout::StridedFirst;
    if (v.noncontiguous && layout != Layout::Contiguous) {
      double pad = s.kind == Kind::Float ? std::numeric_limits<double>::quiet_NaN()
                   : s.kind == Kind::Index ? (dt == DType::I32 ? 1e9 : 1e15)
                                           : 1.0;
      t = strided_view(s.shape, layout, dt, v.device, pad);
      if (layout == Layout::ExpandedFirst) {
        // Write the one distinct slice into the stride-0 storage.
        Shape one = s.shape;
        one[0] = 1;
        Tensor base = Tensor::alias(t, one, contiguous_strides(one), t.offset());
        copy_(base, narrow(logical, 0, 0, 1));
      } else {
        copy_(t, logical);
      }
    }
    t = detach(t);
    if (grad && v.set_requires_grad) t.set_requires_grad(true);
    inputs.push_back(t);
  }
  return inputs;
}

namespace {

// To the CPU, floats as f64, contiguous, off the graph.
Tensor host_copy(const Tensor& t) {
  NoGradGuard no_grad;
  Tensor h = to(detach(t), Device::cpu());
  if (is_floating(h.dtype())) h = to(h, DType::F64);
  return clone(h);
}

}  // namespace

Outcome run_case(const OpCase& c, const std::vector<Tensor>& inputs, uint64_t seed,
                 bool strided_upstream) {
  for (const Tensor& t : inputs)
    if (t.requires_grad()) t.set_grad(Tensor());
  Tensor out = c.fn(inputs);
  Outcome r;
  r.out = host_copy(out);
  r.grads.resize(inputs.size());
  if (!out.requires_grad()) return r;
  // w: f32-representable normal draws, the same for every dtype and device.
  std::mt19937_64 rng(seed ^ 0x5757575757575757ull);
  std::normal_distribution<double> normal(0.0, 1.0);
  std::vector<double> w(out.numel());
  for (double& x : w) x = round_to_f32(normal(rng));
  Tensor wt = to(from_data<double>(w, out.shape()), out.dtype());
  if (out.device() != Device::cpu()) wt = to(wt, out.device());
  if (strided_upstream && out.dim() > 0 && out.numel() > 0) {
    // The same values as a transposed/strided view with NaN in the gaps: every backward
    // must cope with a non-contiguous incoming gradient.
    NoGradGuard no_grad;
    InputSpec spec;
    spec.shape = out.shape();
    Tensor strided = strided_view(out.shape(), resolve_layout(spec), out.dtype(), out.device(),
                                  std::numeric_limits<double>::quiet_NaN());
    copy_(strided, wt);
    wt = strided;
  }
  out.backward(wt);
  for (size_t k = 0; k < inputs.size(); ++k) {
    if (!inputs[k].requires_grad()) continue;
    Tensor g = inputs[k].grad();
    r.grads[k] = g.defined() ? host_copy(g) : zeros(inputs[k].shape(), DType::F64);
  }
  return r;
}

Comparison compare(const Tensor& got, const Tensor& want, const Tolerance& tol, double max_nmse) {
  Comparison c;
  std::ostringstream msg;
  if (got.defined() != want.defined()) {
    c.ok = false;
    c.message = got.defined() ? "got a tensor where none was expected" : "got no tensor";
    return c;
  }
  if (!got.defined()) return c;
  if (got.shape() != want.shape() || got.dtype() != want.dtype()) {
    c.ok = false;
    msg << "got " << got.describe() << ", want " << want.describe();
    c.message = msg.str();
    return c;
  }
  std::vector<double> a = to_vector<double>(got), b = to_vector<double>(want);
  const bool exact = !is_floating(want.dtype());
  double err2 = 0, ref2 = 0;
  for (size_t i = 0; i < a.size(); ++i) {
    bool fine;
    if (std::isnan(b[i]) || std::isnan(a[i])) {
      fine = std::isnan(a[i]) && std::isnan(b[i]);
    } else if (std::isinf(b[i]) || std::isinf(a[i])) {
      fine = a[i] == b[i];
    } else {
      double d = std::abs(a[i] - b[i]);
      err2 += d * d;
      ref2 += b[i] * b[i];
      c.max_abs = std::max(c.max_abs, d);
      fine = exact ? d == 0 : d <= tol.atol + tol.rtol * std::abs(b[i]);
    }
    if (!fine && c.ok) {
      c.ok = false;
      msg.precision(10);
      msg << "element " << i << " of " << shape_str(want.shape()) << ": got " << a[i] << ", want "
          << b[i] << " (|diff| " << std::abs(a[i] - b[i]) << ", allowed " << tol.atol << " + "
          << tol.rtol << " * |want|)";
    }
  }
  c.nmse = ref2 > 0 ? err2 / ref2 : err2;
  if (c.ok && c.nmse > max_nmse) {
    c.ok = false;
    msg << "NMSE " << c.nmse << " exceeds " << max_nmse;
  }
  c.message = msg.str();
  return c;
}

std::vector<Device> available_devices() {
  std::vector<Device> devices = {Device::cpu()};
  for (Device d : {Device::cuda(0)}) {
    try {
      backend_for(d);
      Tensor probe = zeros({1}, DType::F32, d);
      (void)probe;
      devices.push_back(d);
    } catch (const std::exception&) {
    }
  }
  return devices;
}

std::vector<std::string> case_names_for_other_devices(bool differentiable_only) {
  if (available_devices().size() < 2) return {};
  return case_names(differentiable_only);
}

std::vector<std::string> unavailable_device_notes() {
  std::vector<std::string> notes;
  for (Device d : {Device::cuda(0)}) {
    try {
      backend_for(d);
      Tensor probe = zeros({1}, DType::F32, d);
      (void)probe;
    } catch (const std::exception& e) {
      notes.push_back(d.str() + ": " + e.what());
    }
  }
  return notes;
}

}  // namespace mmgrad::optest
