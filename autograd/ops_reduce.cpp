// Reductions and their gradients.
#include <algorithm>

#include "autograd/op_helpers.h"

namespace mmgrad {
using autograd::record;
using autograd::SavedTensor;
using G = std::vector<Tensor>;

namespace {

// Which dims a reduction covers (all when `dims` is empty), as a mask.
std::vector<bool> reduced_mask(const Tensor& x, const std::vector<int64_t>& dims, const char* op) {
  std::vector<bool> mask(x.dim(), dims.empty());
  for (int64_t d : dims) {
    int n = normalize_dim(d, x.dim(), op);
    if (mask[n] && !dims.empty())
      fail(op, "dim " + std::to_string(d) + " appears twice", {describe("x", x)});
    mask[n] = true;
  }
  return mask;
}

Shape keepdim_shape(const Tensor& x, const std::vector<bool>& mask) {
  Shape s = x.shape();
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) s[d] = 1;
  return s;
}

Shape dropped_shape(const Tensor& x, const std::vector<bool>& mask) {
  Shape s;
  for (int d = 0; d < x.dim(); ++d)
    if (!mask[d]) s.push_back(x.shape()[d]);
  return s;
}

// The raw kernel: returns the keepdim-shaped result (and indices if asked).
Tensor reduce_kernel(ReduceOp op, const Tensor& x, const Shape& kept, Tensor* indices) {
  Tensor out = Tensor::empty(kept, x.dtype(), x.device());
  Tensor idx;
  if (indices) idx = Tensor::empty(kept, DType::I64, x.device());
  MMGRAD_DISPATCH(reduce, x.device(), op, out, idx, x);
  if (indices) *indices = idx;
  return out;
}

Tensor finish(const Tensor& kept_result, const Tensor& x, const std::vector<bool>& mask, bool keepdim) {
  if (keepdim) return kept_result;
  return view(kept_result, dropped_shape(x, mask));
}

}  // namespace

Tensor sum(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  detail::check_defined(x, "sum", "x");
  auto mask = reduced_mask(x, dims, "sum");
  Shape kept = keepdim_shape(x, mask);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = finish(reduce_kernel(ReduceOp::Sum, x, kept, nullptr), x, mask, keepdim);
  }
  record("sum", out, {x}, [in_shape = x.shape(), kept](const Tensor& g) {
    return G{expand(reshape(g, kept), in_shape)};
  });
  return out;
}

Tensor mean(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) {
  detail::check_floating(x, "mean");
  auto mask = reduced_mask(x, dims, "mean");
  int64_t count = 1;
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.shape()[d];
  return div(sum(x, dims, keepdim), static_cast<double>(count));
}

Tensor var(const Tensor& x, const std::vector<int64_t>& dims, int64_t correction, bool keepdim) {
  detail::check_floating(x, "var");
  auto mask = reduced_mask(x, dims, "var");
  int64_t count = 1;
  for (int d = 0; d < x.dim(); ++d)
    if (mask[d]) count *= x.shape()[d];
  Tensor centred = sub(x, mean(x, dims, true));
  // Two-pass (centre first): stable where E[x^2] - E[x]^2 cancels catastrophically.
  double denom = static_cast<double>(std::max<int64_t>(count - correction, 0));
  return div(sum(square(centred), dims, keepdim), denom);
}

static Tensor extreme(ReduceOp op, const Tensor& x, const std::vector<int64_t>& dims, bool keepdim, const char* name) {
  detail::check_defined(x, name, "x");
  if (x.numel() == 0) fail(name, "cannot take the extreme of an empty tensor", {describe("x", x)});
  auto mask = reduced_mask(x, dims, name);
  Shape kept = keepdim_shape(x, mask);
  Tensor out;
  {
    NoGradGuard no_grad;
    out = finish(reduce_kernel(op, x, kept, nullptr), x, mask, keepdim);
  }
  // The gradient is split evenly among the elements equal to the extreme.
  record(name, out, {x}, [x = SavedTensor(x), y = SavedTensor(out), kept](const Tensor& g) {
    Tensor yk = reshape(y.get(), kept);
    Tensor hit = eq(x.get(), yk).to(g.dtype());
    std::vector<int64_t> tie_dims;  // the reduced dims that had more than one element
    for (size_t i = 0; i < kept.size(); ++i)
      if (kept[i] == 1 && x.get().shape()[i] != 1) tie_dims.push_back(static_cast<int64_t>(i));
    Tensor share = mul(hit, reshape(g, kept));
    // No such dim: every element is its own extreme. (An empty list would mean "all dims".)
    if (tie_dims.empty()) return G{share};
    return G{div(share, sum(hit, tie_dims, true))};
  });
  return out;
}
Tensor amax(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return extreme(ReduceOp::Max, x, dims, keepdim, "amax"); }
Tensor amin(const Tensor& x, const std::vector<int64_t>& dims, bool keepdim) { return extreme(ReduceOp::Min, x, dims, keepdim, "amin"); }

static std::pair<Tensor, Tensor> extreme_with_index(ReduceOp op, const Tensor& x, int64_t dim, bool keepdim, const char* name) {
  detail::check_defined(x, name, "x");
  if (x.dim() == 0) return {x, zeros({}, DType::I64, x.device())};
  int d = normalize_dim(dim, x.dim(), name);
  if (x.shape()[d] == 0) fail(name, "cannot reduce over an empty dim", {describe("x", x)});
  std::vector<bool> mask(x.dim(), false);
  mask[d] = true;
  Shape kept = keepdim_shape(x, mask);
  Tensor idx, out;
  {
    NoGradGuard no_grad;
    out = finish(reduce_kernel(op, x, kept, &idx), x, mask, keepdim);
    idx = finish(idx, x, mask, keepdim);
  }
  // The gradient goes to the selected element (scatter along dim).
  record(name, out, {x}, [idx_k = SavedTensor(keepdim ? idx : unsqueeze(idx, d)), in_shape = x.shape(), d,
                          kept](const Tensor& g) {
    Tensor gi = zeros(in_shape, g.dtype(), g.device());
    Tensor src = reshape(g, kept).contiguous();
    MMGRAD_DISPATCH(scatter_add, gi.device(), gi, d, idx_k.get().contiguous(), src);
    return G{gi};
  });
  return {out, idx};
}
std::pair<Tensor, Tensor> max(const Tensor& x, int64_t dim, bool keepdim) { return extreme_with_index(ReduceOp::Max, x, dim, keepdim, "max"); }
std::pair<Tensor, Tensor> min(const Tensor& x, int64_t dim, bool keepdim) { return extreme_with_index(ReduceOp::Min, x, dim, keepdim, "min"); }
Tensor argmax(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return max(x, dim, keepdim).second;
}
Tensor argmin(const Tensor& x, int64_t dim, bool keepdim) {
  NoGradGuard no_grad;
  return min(x, dim, keepdim).second;
}

Tensor sum_to(const Tensor& x, const Shape& shape) {
  detail::check_defined(x, "sum_to", "x");
  if (x.shape() == shape) return x;
  if (shape.size() > static_cast<size_t>(x.dim()))
    fail("sum_to", "target " + shape_str(shape) + " has more dims than the tensor", {describe("x", x)});
  size_t lead = x.dim() - shape.size();
  std::vector<int64_t> dims;
  for (size_t d = 0; d < static_cast<size_t>(x.dim()); ++d) {
    if (d < lead) {
      dims.push_back(static_cast<int64_t>(d));
    } else if (shape[d - lead] == 1 && x.shape()[d] != 1) {
      dims.push_back(static_cast<int64_t>(d));
    } else if (shape[d - lead] != x.shape()[d]) {
      fail("sum_to", "cannot sum " + shape_str(x.shape()) + " to " + shape_str(shape), {describe("x", x)});
    }
  }
  if (dims.empty()) return reshape(x, shape);
  return reshape(sum(x, dims, true), shape);
}

}  // namespace mmgrad
