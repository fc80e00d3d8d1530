// Views: new shape/strides/offset over the same storage, never a copy (reshape copies only
// when no view can express the result). Each backward maps the gradient back the same way.
#include <numeric>

#include "autograd/op_helpers.h"

namespace mmgrad {
using autograd::record;

namespace {

Tensor make_view(const Tensor& t, Shape shape, Shape strides, int64_t offset) {
  return Tensor::alias(t, std::move(shape), std::move(strides), offset);
}

// Resolves a single -1 and checks the element count.
Shape infer_shape(const Shape& requested, int64_t numel, const char* op, const Tensor& t) {
  Shape shape = requested;
  int infer = -1;
  int64_t known = 1;
  for (size_t i = 0; i < shape.size(); ++i) {
    if (shape[i] == -1) {
      if (infer >= 0) fail(op, "only one dimension can be -1", {describe("x", t)});
      infer = static_cast<int>(i);
    } else if (shape[i] < 0) {
      fail(op, "invalid size " + std::to_string(shape[i]) + " in " + shape_str(requested),
           {describe("x", t)});
    } else {
      known *= shape[i];
    }
  }
  if (infer >= 0) {
    if (known == 0 || numel % known != 0)
      fail(op, "cannot infer -1 in " + shape_str(requested) + " for " + std::to_string(numel) +
                   " elements", {describe("x", t)});
    shape[infer] = numel / known;
  } else if (known != numel) {
    fail(op, "shape " + shape_str(requested) + " has " + std::to_string(known) +
                 " elements, the tensor has " + std::to_string(numel), {describe("x", t)});
  }
  check_shape(shape, op);
  return shape;
}

// Strides that let `shape` view the same elements as (old_shape, old_strides), or empty if
// impossible. Dims may only be split or merged within runs that are contiguous in memory.
std::optional<Shape> view_strides(const Shape& old_shape, const Shape& old_strides,
                                  const Shape& shape) {
  int64_t numel = numel_of(old_shape);
  if (numel == 0) return contiguous_strides(shape);
  Shape strides(shape.size());
  int view_d = static_cast<int>(shape.size()) - 1;
  int64_t chunk_base_stride = old_strides.empty() ? 1 : old_strides.back();
  int64_t tensor_numel = 1, view_numel = 1;
  for (int d = static_cast<int>(old_shape.size()) - 1; d >= 0; --d) {
    tensor_numel *= old_shape[d];
    // A chunk ends where the next-outer dim is not contiguous with this one.
    if (d == 0 || (old_shape[d - 1] != 1 && old_strides[d - 1] != tensor_numel * chunk_base_stride)) {
      while (view_d >= 0 && (view_numel < tensor_numel || shape[view_d] == 1)) {
        strides[view_d] = view_numel * chunk_base_stride;
        view_numel *= shape[view_d];
        --view_d;
      }
      if (view_numel != tensor_numel) return std::nullopt;
      if (d > 0) {
        chunk_base_stride = old_strides[d - 1];
        tensor_numel = 1;
        view_numel = 1;
      }
    }
  }
  if (view_d != -1) {
    // Remaining leading dims must all be size 1.
    for (; view_d >= 0; --view_d) {
      if (shape[view_d] != 1) return std::nullopt;
      strides[view_d] = 1;
    }
  }
  return strides;
}

}  // namespace

Tensor view(const Tensor& t, const Shape& requested) {
  detail::check_defined(t, "view", "x");
  Shape shape = infer_shape(requested, t.numel(), "view", t);
  auto strides = view_strides(t.shape(), t.strides(), shape);
  if (!strides)
    fail("view", "cannot view this tensor as " + shape_str(shape) +
                     " without a copy (its strides do not allow it); use reshape()",
         {describe("x", t)});
  Tensor out = make_view(t, shape, *strides, t.offset());
  Shape in_shape = t.shape();
  record("view", out, {t}, [in_shape](const Tensor& g) { return std::vector<Tensor>{reshape(g, in_shape)}; });
  return out;
}

Tensor reshape(const Tensor& t, const Shape& requested) {
  detail::check_defined(t, "reshape", "x");
  Shape shape = infer_shape(requested, t.numel(), "reshape", t);
  if (view_strides(t.shape(), t.strides(), shape)) return view(t, shape);
  return view(clone(t), shape);
}

Tensor flatten(const Tensor& t, int64_t start_dim, int64_t end_dim) {
  detail::check_defined(t, "flatten", "t");
  if (t.dim() == 0) return reshape(t, {1});
  int s = normalize_dim(start_dim, t.dim(), "flatten"), e = normalize_dim(end_dim, t.dim(), "flatten");
  if (s > e) fail("flatten", "start_dim comes after end_dim", {describe("x", t)});
  Shape shape(t.shape().begin(), t.shape().begin() + s);
  int64_t merged = 1;
  for (int d = s; d <= e; ++d) merged *= t.shape()[d];
  shape.push_back(merged);
  shape.insert(shape.end(), t.shape().begin() + e + 1, t.shape().end());
  return reshape(t, shape);
}

Tensor permute(const Tensor& t, const std::vector<int64_t>& dims) {
  detail::check_defined(t, "permute", "x");
  if (static_cast<int>(dims.size()) != t.dim())
    fail("permute", fmt::format("{} dims given for a tensor with {}", dims.size(), t.dim()),
         {describe("x", t)});
  Shape shape(dims.size()), strides(dims.size());
  std::vector<int64_t> inverse(dims.size(), -1);
  for (size_t i = 0; i < dims.size(); ++i) {
    int d = normalize_dim(dims[i], t.dim(), "permute");
    if (inverse[d] != -1) fail("permute", "dim " + std::to_string(d) + " repeats", {describe("x", t)});
    inverse[d] = static_cast<int64_t>(i);
    shape[i] = t.shape()[d];
    strides[i] = t.strides()[d];
  }
  Tensor out = make_view(t, shape, strides, t.offset());
  record("permute", out, {t}, [inverse](const Tensor& g) { return std::vector<Tensor>{permute(g, inverse)}; });
  return out;
}

Tensor transpose(const Tensor& t, int64_t d0, int64_t d1) {
  detail::check_defined(t, "transpose", "x");
  std::vector<int64_t> dims(t.dim());
  std::iota(dims.begin(), dims.end(), 0);
  std::swap(dims[normalize_dim(d0, t.dim(), "transpose")], dims[normalize_dim(d1, t.dim(), "transpose")]);
  return permute(t, dims);
}

Tensor slice(const Tensor& t, int64_t dim, int64_t start, int64_t end, int64_t step) {
  detail::check_defined(t, "slice", "x");
  int d = normalize_dim(dim, t.dim(), "slice");
  int64_t n = t.shape()[d];
  if (step <= 0) fail("slice", "step must be positive", {describe("x", t)});
  if (start < 0) start += n;
  if (end < 0) end += n;
  start = std::clamp<int64_t>(start, 0, n);
  end = std::clamp<int64_t>(end, start, n);
  Shape shape = t.shape(), strides = t.strides();
  shape[d] = (end - start + step - 1) / step;
  strides[d] *= step;
  Tensor out = make_view(t, shape, strides, t.offset() + start * t.strides()[d]);
  Shape in_shape = t.shape();
  record("slice", out, {t}, [in_shape, d, start, end, step](const Tensor& g) {
    Tensor gi = zeros(in_shape, g.dtype(), g.device());
    Tensor window = slice(gi, d, start, end, step);
    copy_(window, g);
    return std::vector<Tensor>{gi};
  });
  return out;
}

Tensor narrow(const Tensor& t, int64_t dim, int64_t start, int64_t length) {
  detail::check_defined(t, "narrow", "x");
  int d = normalize_dim(dim, t.dim(), "narrow");
  if (start < 0) start += t.shape()[d];
  if (start < 0 || length < 0 || start + length > t.shape()[d])
    fail("narrow", fmt::format("range [{}, {}) is outside dim {} of size {}", start,
                               start + length, d, t.shape()[d]),
         {describe("x", t)});
  return slice(t, d, start, start + length, 1);
}

Tensor select(const Tensor& t, int64_t dim, int64_t index) {
  detail::check_defined(t, "select", "t");
  int d = normalize_dim(dim, t.dim(), "select");
  if (index < -t.shape()[d] || index >= t.shape()[d])
    fail("select", fmt::format("index {} is out of range for dim {} of size {}", index, d,
                               t.shape()[d]), {describe("x", t)});
  if (index < 0) index += t.shape()[d];
  return squeeze(narrow(t, d, index, 1), d);
}

Tensor expand(const Tensor& t, const Shape& requested) {
  detail::check_defined(t, "expand", "x");
  if (requested.size() < static_cast<size_t>(t.dim()))
    fail("expand", "target " + shape_str(requested) + " has fewer dims than the tensor",
         {describe("x", t)});
  size_t lead = requested.size() - t.dim();
  Shape shape(requested.size()), strides(requested.size());
  for (size_t i = 0; i < requested.size(); ++i) {
    if (i < lead) {
      if (requested[i] < 0) fail("expand", "-1 is not allowed for new leading dims", {describe("x", t)});
      shape[i] = requested[i];
      strides[i] = 0;
      continue;
    }
    int64_t have = t.shape()[i - lead];
    int64_t want = requested[i] == -1 ? have : requested[i];
    if (have != want && have != 1)
      fail("expand", fmt::format("cannot expand size {} to {} at dim {}", have, want, i),
           {describe("x", t)});
    shape[i] = want;
    strides[i] = have == want ? t.strides()[i - lead] : 0;
  }
  check_shape(shape, "expand");
  if (shape == t.shape()) return t;
  Tensor out = make_view(t, shape, strides, t.offset());
  Shape in_shape = t.shape();
  record("expand", out, {t}, [in_shape](const Tensor& g) { return std::vector<Tensor>{sum_to(g, in_shape)}; });
  return out;
}

Tensor squeeze(const Tensor& t, int64_t dim) {
  detail::check_defined(t, "squeeze", "x");
  int d = normalize_dim(dim, t.dim(), "squeeze");
  if (t.shape()[d] != 1) return t;  // as in PyTorch: squeezing a non-1 dim leaves it
  Shape shape = t.shape();
  shape.erase(shape.begin() + d);
  return view(t, shape);
}

Tensor unsqueeze(const Tensor& t, int64_t dim) {
  detail::check_defined(t, "unsqueeze", "x");
  int d = normalize_dim(dim, t.dim() + 1, "unsqueeze");
  Shape shape = t.shape();
  shape.insert(shape.begin() + d, 1);
  return view(t, shape);
}

}  // namespace mmgrad
