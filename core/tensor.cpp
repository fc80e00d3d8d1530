#include "core/tensor.h"

#include <fmt/format.h>

#include <algorithm>

namespace mmgrad {

Tensor Tensor::empty(const Shape& shape, DType dtype, Device device) {
  check_shape(shape, "empty");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = std::make_shared<Storage>(numel_of(shape) * dtype_size(dtype), device);
  impl->shape = shape;
  impl->strides = contiguous_strides(shape);
  impl->dtype = dtype;
  return Tensor(std::move(impl));
}

Tensor Tensor::alias(const Tensor& base, Shape shape, Shape strides, int64_t offset) {
  check_shape(shape, "view");
  auto impl = std::make_shared<TensorImpl>();
  impl->storage = base.impl().storage;
  impl->shape = std::move(shape);
  impl->strides = std::move(strides);
  impl->offset = offset;
  impl->dtype = base.dtype();
  return Tensor(std::move(impl));
}

TensorImpl& Tensor::impl() const {
  if (!impl_) fail("tensor", "use of an undefined (empty-handle) tensor");
  return *impl_;
}

int64_t Tensor::size(int64_t d) const { return shape()[normalize_dim(d, dim(), "size")]; }
int64_t Tensor::stride(int64_t d) const { return strides()[normalize_dim(d, dim(), "stride")]; }

bool Tensor::is_contiguous() const {
  if (numel() == 0) return true;
  int64_t expected = 1;
  for (int i = dim() - 1; i >= 0; --i) {
    if (shape()[i] == 1) continue;
    if (strides()[i] != expected) return false;
    expected *= shape()[i];
  }
  return true;
}

bool Tensor::is_non_overlapping_and_dense() const {
  if (numel() == 0) return true;
  std::vector<int> order;
  for (int i = 0; i < dim(); ++i)
    if (shape()[i] != 1) order.push_back(i);
  std::sort(order.begin(), order.end(),
            [&](int a, int b) { return strides()[a] > strides()[b]; });
  int64_t expected = 1;
  for (int k = static_cast<int>(order.size()) - 1; k >= 0; --k) {
    if (strides()[order[k]] != expected) return false;
    expected *= shape()[order[k]];
  }
  return true;
}

void* Tensor::raw_data() const {
  return static_cast<char*>(impl().storage->data()) + offset() * element_size();
}

bool Tensor::shares_storage(const Tensor& other) const {
  return defined() && other.defined() && impl().storage == other.impl().storage;
}

void Tensor::check_access(DType want, const char* op) const {
  if (dtype() != want)
    fail(op, fmt::format("requested {} data from a {} tensor", dtype_name(want),
                         dtype_name(dtype())),
         {::mmgrad::describe("self", *this)});
  if (device().type != DeviceType::CPU)
    fail(op, "host pointer requested for a tensor that lives on " + device().str() +
                 "; copy it with to(Device::cpu()) first",
         {::mmgrad::describe("self", *this)});
}

std::string Tensor::describe() const {
  if (!defined()) return "undefined";
  return fmt::format("{}{} {}", dtype_name(dtype()), shape_str(shape()), device().str());
}

std::string describe(const char* name, const Tensor& t) {
  return fmt::format("{}: {}", name, t.describe());
}

Tensor& Tensor::set_requires_grad(bool on) {
  if (on && !is_floating(dtype()))
    fail("set_requires_grad", "only floating-point tensors can require gradients",
         {::mmgrad::describe("self", *this)});
  if (!is_leaf())
    fail("set_requires_grad",
         "requires_grad can only be set on leaf tensors; use detach() to make a new leaf",
         {::mmgrad::describe("self", *this)});
  impl().requires_grad = on;
  return *this;
}

Tensor Tensor::grad() const {
  return impl().grad ? Tensor(impl().grad) : Tensor();
}

void Tensor::set_grad(const Tensor& g) const {
  if (g.defined() && g.shape() != shape())
    fail("set_grad", "gradient shape differs from the tensor's shape",
         {::mmgrad::describe("self", *this), ::mmgrad::describe("grad", g)});
  impl().grad = g.impl_ptr();
}

}  // namespace mmgrad
