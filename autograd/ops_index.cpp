// Indexing, joining and splitting.
#include "autograd/op_helpers.h"

namespace mmgrad {
using autograd::record;
using autograd::SavedTensor;
using G = std::vector<Tensor>;

Tensor index_select(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "index_select", "x");
  detail::check_defined(index, "index_select", "index");
  detail::check_integer_index(index, "index_select");
  if (x.dim() == 0) fail("index_select", "cannot index a 0-dim tensor", {describe("x", x)});
  if (index.dim() > 1) fail("index_select", "index must be 1-D", {describe("index", index)});
  if (index.device() != x.device())
    fail("index_select", "index and x are on different devices", {describe("x", x), describe("index", index)});
  int d = normalize_dim(dim, x.dim(), "index_select");
  Tensor idx = contiguous(reshape(index.to(DType::I64), {-1}));
  Tensor xc = contiguous(x);
  Shape out_shape = x.shape();
  out_shape[d] = idx.numel();
  Tensor out = Tensor::empty(out_shape, x.dtype(), x.device());
  if (out.numel() > 0) MMGRAD_DISPATCH(index_select, x.device(), out, xc, d, idx);
  record("index_select", out, {xc}, [idx_s = SavedTensor(idx), in_shape = x.shape(), d](const Tensor& g) {
    Tensor gi = zeros(in_shape, g.dtype(), g.device());
    if (g.numel() > 0) MMGRAD_DISPATCH(index_add, g.device(), gi, d, idx_s.get(), contiguous(g));
    return G{gi};
  });
  return out;
}

Tensor gather(const Tensor& x, int64_t dim, const Tensor& index) {
  detail::check_defined(x, "gather", "x");
  detail::check_defined(index, "gather", "index");
  detail::check_integer_index(index, "gather");
  int d = normalize_dim(dim, x.dim(), "gather");
  bool shape_ok = index.dim() == x.dim();
  for (int i = 0; shape_ok && i < x.dim(); ++i)
    if (i != d && index.shape()[i] != x.shape()[i]) shape_ok = false;
  if (!shape_ok)
    fail("gather", "index must have x's shape except along dim", {describe("x", x), describe("index", index)});
  if (index.device() != x.device())
    fail("gather", "index and x are on different devices", {describe("x", x), describe("index", index)});
  Tensor idx = contiguous(index.to(DType::I64));
  Tensor xc = contiguous(x);
  Tensor out = Tensor::empty(idx.shape(), x.dtype(), x.device());
  if (out.numel() > 0) MMGRAD_DISPATCH(gather, x.device(), out, xc, d, idx);
  record("gather", out, {xc}, [idx_s = SavedTensor(idx), in_shape = x.shape(), d](const Tensor& g) {
    Tensor gi = zeros(in_shape, g.dtype(), g.device());
    if (g.numel() > 0) MMGRAD_DISPATCH(scatter_add, g.device(), gi, d, idx_s.get(), contiguous(g));
    return G{gi};
  });
  return out;
}

Tensor concat(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) fail("concat", "needs at least one tensor");
  const Tensor& first = tensors[0];
  detail::check_defined(first, "concat", "tensors[0]");
  int d = normalize_dim(dim, first.dim(), "concat");
  Shape out_shape = first.shape();
  out_shape[d] = 0;
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_compatible(first, t, "concat");
    bool ok = t.dim() == first.dim();
    for (int j = 0; ok && j < t.dim(); ++j)
      if (j != d && t.shape()[j] != first.shape()[j]) ok = false;
    if (!ok)
      fail("concat", fmt::format("tensor {} does not match tensor 0 outside dim {}", i, d),
           {describe("tensors[0]", first), describe(("tensors[" + std::to_string(i) + "]").c_str(), t)});
    out_shape[d] += t.shape()[d];
  }
  Tensor out = Tensor::empty(out_shape, first.dtype(), first.device());
  std::vector<int64_t> sizes;
  {
    NoGradGuard no_grad;
    int64_t offset = 0;
    for (const Tensor& t : tensors) {
      Tensor window = narrow(out, d, offset, t.shape()[d]);
      if (window.numel() > 0) MMGRAD_DISPATCH(copy, out.device(), window, t);
      offset += t.shape()[d];
      sizes.push_back(t.shape()[d]);
    }
  }
  record("concat", out, tensors, [sizes, d](const Tensor& g) {
    G grads;
    int64_t offset = 0;
    for (int64_t s : sizes) {
      grads.push_back(narrow(g, d, offset, s));
      offset += s;
    }
    return grads;
  });
  return out;
}

Tensor stack(const std::vector<Tensor>& tensors, int64_t dim) {
  if (tensors.empty()) fail("stack", "needs at least one tensor");
  for (size_t i = 0; i < tensors.size(); ++i) detail::check_defined(tensors[i], "stack", "tensors[i]");
  int d = normalize_dim(dim, tensors[0].dim() + 1, "stack");
  std::vector<Tensor> expanded;
  for (size_t i = 0; i < tensors.size(); ++i) {
    if (tensors[i].shape() != tensors[0].shape())
      fail("stack", fmt::format("tensor {} has a different shape from tensor 0", i),
           {describe("tensors[0]", tensors[0]), describe(("tensors[" + std::to_string(i) + "]").c_str(), tensors[i])});
    expanded.push_back(unsqueeze(tensors[i], d));
  }
  return concat(expanded, d);
}

std::vector<Tensor> split(const Tensor& x, int64_t size, int64_t dim) {
  detail::check_defined(x, "split", "x");
  int d = normalize_dim(dim, x.dim(), "split");
  if (size <= 0) fail("split", "split size must be positive", {describe("x", x)});
  std::vector<Tensor> parts;
  for (int64_t start = 0; start < x.shape()[d]; start += size)
    parts.push_back(narrow(x, d, start, std::min(size, x.shape()[d] - start)));
  return parts;
}

std::vector<Tensor> chunk(const Tensor& x, int64_t chunks, int64_t dim) {
  detail::check_defined(x, "chunk", "x");
  if (chunks <= 0) fail("chunk", "the number of chunks must be positive", {describe("x", x)});
  int d = normalize_dim(dim, x.dim(), "chunk");
  int64_t size = (x.shape()[d] + chunks - 1) / chunks;
  return split(x, std::max<int64_t>(size, 1), d);
}

}  // namespace mmgrad
