// Tensor: a view (shape, strides, offset, dtype) onto shared, reference-counted storage,
// plus the autograd state of that view. Copying a Tensor copies a handle, never data.
//
// core/ defines the data structure. The ops (including member sugar such as reshape or
// backward, declared at the bottom of the class) are defined in autograd/, which records
// them for reverse-mode differentiation.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "core/device.h"
#include "core/dtype.h"
#include "core/error.h"
#include "core/shape.h"
#include "core/storage.h"

namespace mmgrad {

namespace autograd {
class Node;
}

struct TensorImpl {
  std::shared_ptr<Storage> storage;
  Shape shape;
  Shape strides;       // in elements
  int64_t offset = 0;  // in elements, from the start of storage
  DType dtype = DType::F32;

  // Autograd state. A tensor with grad_fn is the output of a recorded op (a non-leaf);
  // a leaf that requires grad accumulates into `grad` during backward.
  bool requires_grad = false;
  std::shared_ptr<TensorImpl> grad;
  std::shared_ptr<autograd::Node> grad_fn;
};

class Tensor {
 public:
  Tensor() = default;
  explicit Tensor(std::shared_ptr<TensorImpl> impl) : impl_(std::move(impl)) {}

  // Uninitialised contiguous memory.
  static Tensor empty(const Shape& shape, DType dtype = DType::F32, Device device = Device::cpu());
  // A view on `base`'s storage with the given geometry. No autograd: callers that need a
  // differentiable view use the ops in autograd/ (reshape, transpose, narrow, ...).
  static Tensor alias(const Tensor& base, Shape shape, Shape strides, int64_t offset);

  bool defined() const { return impl_ != nullptr; }
  const Shape& shape() const { return impl().shape; }
  const Shape& strides() const { return impl().strides; }
  int dim() const { return static_cast<int>(impl().shape.size()); }
  int64_t size(int64_t d) const;
  int64_t stride(int64_t d) const;
  int64_t offset() const { return impl().offset; }
  int64_t numel() const { return numel_of(impl().shape); }
  DType dtype() const { return impl().dtype; }
  Device device() const { return impl().storage->device(); }
  size_t element_size() const { return dtype_size(impl().dtype); }
  bool is_contiguous() const;
  // True when the elements are one dense block in row-major order or any permutation of it.
  bool is_non_overlapping_and_dense() const;

  // Pointer to the first element, on whatever device the tensor lives.
  void* raw_data() const;
  // Typed pointer to the first element; checks dtype and that the tensor is on the CPU.
  template <typename T>
  T* data_ptr() const {
    check_access(dtype_of<T>::value, "data_ptr");
    return static_cast<T*>(raw_data());
  }

  Storage& storage() const { return *impl().storage; }
  bool shares_storage(const Tensor& other) const;
  // The storage's version: in-place ops bump it, and what is keyed on it (tensors saved for
  // backward, autocast's rounded copies) notices the change. Code that writes through
  // raw_data()/data_ptr() into a tensor that may already have been used must bump it too.
  uint64_t version() const { return impl().storage->version(); }
  void bump_version() const { impl().storage->bump_version(); }
  TensorImpl& impl() const;
  const std::shared_ptr<TensorImpl>& impl_ptr() const { return impl_; }
  bool is_same(const Tensor& other) const { return impl_ == other.impl_; }

  // "f32[2, 3] cpu": what error messages print for an operand.
  std::string describe() const;

  // ---- autograd state ----
  bool requires_grad() const { return defined() && impl().requires_grad; }
  // Marks a leaf as a parameter/input that wants a gradient. Only floating leaves can.
  Tensor& set_requires_grad(bool on = true);
  bool is_leaf() const { return impl().grad_fn == nullptr; }
  Tensor grad() const;  // undefined until backward reaches this leaf
  void set_grad(const Tensor& g) const;
  const std::shared_ptr<autograd::Node>& grad_fn() const { return impl().grad_fn; }

  // ---- member sugar for the most common ops (defined in autograd/) ----
  Tensor to(DType dtype) const;
  Tensor to(Device device) const;
  Tensor contiguous() const;
  Tensor clone() const;
  Tensor detach() const;
  Tensor reshape(const Shape& shape) const;
  Tensor view(const Shape& shape) const;
  Tensor transpose(int64_t d0, int64_t d1) const;
  Tensor permute(const std::vector<int64_t>& dims) const;
  Tensor narrow(int64_t dim, int64_t start, int64_t length) const;
  Tensor unsqueeze(int64_t dim) const;
  Tensor squeeze(int64_t dim) const;
  Tensor expand(const Shape& shape) const;
  Tensor t() const;  // transpose of the last two dims
  double item() const;
  // Reverse-mode differentiation from this tensor: a scalar, or with `grad` of its shape.
  void backward(const Tensor& grad = Tensor(), bool retain_graph = false) const;
  std::string str() const;  // printed values, see core/print.h

 private:
  void check_access(DType want, const char* op) const;
  std::shared_ptr<TensorImpl> impl_;
};

// The operand description used in error messages, with a name: "a: f32[2, 3] cpu".
std::string describe(const char* name, const Tensor& t);

}  // namespace mmgrad
