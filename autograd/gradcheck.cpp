#include "autograd/gradcheck.h"

#include <cmath>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace mmgrad {
namespace {

// The one-element view of logical (row-major) element i of t.
Tensor element(const Tensor& t, int64_t i) {
  int64_t off = t.offset();
  for (int d = t.dim() - 1; d >= 0; --d) {
    off += (i % t.shape()[d]) * t.strides()[d];
    i /= t.shape()[d];
  }
  return Tensor::alias(t, {}, {}, off);
}

double projected(const GradcheckFn& fn, const std::vector<Tensor>& inputs, const Tensor& v) {
  NoGradGuard no_grad;
  Tensor out = fn(inputs);
  return item(sum(mul(out, v)));
}

}  // namespace

GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options) {
  GradcheckResult result;
  // Leaves that alias the caller's tensors (same strides), so strided inputs stay strided.
  std::vector<Tensor> leaves;
  for (const Tensor& t : inputs) {
    if (t.defined() && t.requires_grad() && t.dtype() != DType::F64)
      fail("gradcheck", "inputs that require grad must be f64", {describe("input", t)});
    Tensor leaf = t.defined() ? detach(t) : t;
    if (t.defined() && t.requires_grad()) leaf.set_requires_grad(true);
    leaves.push_back(leaf);
  }
  Generator gen(options.seed);
  for (int p = 0; p < options.projections; ++p) {
    for (Tensor& l : leaves)
      if (l.defined()) l.set_grad(Tensor());
    Tensor out = fn(leaves);
    if (!out.requires_grad()) {
      result.ok = false;
      result.message = "the output does not depend on any input that requires grad";
      return result;
    }
    Tensor v = randn(out.shape(), out.dtype(), out.device(), &gen);
    sum(mul(out, v)).backward();

    for (size_t k = 0; k < leaves.size(); ++k) {
      Tensor& leaf = leaves[k];
      if (!leaf.defined() || !leaf.requires_grad()) continue;
      std::vector<double> analytic(leaf.numel(), 0.0);
      if (leaf.grad().defined()) analytic = to_vector<double>(leaf.grad());
      for (int64_t i = 0; i < leaf.numel(); ++i) {
        Tensor e = element(leaf, i);
        double x0 = item(e);
        {
          NoGradGuard no_grad;
          fill_(e, x0 + options.eps);
        }
        double up = projected(fn, leaves, v);
        {
          NoGradGuard no_grad;
          fill_(e, x0 - options.eps);
        }
        double down = projected(fn, leaves, v);
        {
          NoGradGuard no_grad;
          fill_(e, x0);
        }
        double numeric = (up - down) / (2 * options.eps);
        double err = std::abs(analytic[i] - numeric);
        result.max_abs_error = std::max(result.max_abs_error, err);
        if (!(err <= options.atol + options.rtol * std::abs(numeric)) && result.ok) {
          result.ok = false;
          result.message = fmt::format(
              "input {} element {}: analytical {:.10g} vs numerical {:.10g} (projection {})", k, i,
              analytic[i], numeric, p);
        }
      }
    }
    if (!result.ok) return result;
  }
  return result;
}

}  // namespace mmgrad
