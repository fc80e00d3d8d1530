// Member sugar declared in core/tensor.h, forwarding to the ops.
#include "autograd/engine.h"
#include "autograd/ops.h"

namespace mmgrad {

Tensor Tensor::to(DType dtype) const { return ::mmgrad::to(*this, dtype); }
Tensor Tensor::to(Device device) const { return ::mmgrad::to(*this, device); }
Tensor Tensor::contiguous() const { return ::mmgrad::contiguous(*this); }
Tensor Tensor::clone() const { return ::mmgrad::clone(*this); }
Tensor Tensor::detach() const { return ::mmgrad::detach(*this); }
Tensor Tensor::reshape(const Shape& shape) const { return ::mmgrad::reshape(*this, shape); }
Tensor Tensor::view(const Shape& shape) const { return ::mmgrad::view(*this, shape); }
Tensor Tensor::transpose(int64_t d0, int64_t d1) const { return ::mmgrad::transpose(*this, d0, d1); }
Tensor Tensor::permute(const std::vector<int64_t>& dims) const { return ::mmgrad::permute(*this, dims); }
Tensor Tensor::narrow(int64_t dim, int64_t start, int64_t length) const {
  return ::mmgrad::narrow(*this, dim, start, length);
}
Tensor Tensor::unsqueeze(int64_t dim) const { return ::mmgrad::unsqueeze(*this, dim); }
Tensor Tensor::squeeze(int64_t dim) const { return ::mmgrad::squeeze(*this, dim); }
Tensor Tensor::expand(const Shape& shape) const { return ::mmgrad::expand(*this, shape); }
Tensor Tensor::t() const { return ::mmgrad::transpose(*this, -1, -2); }
double Tensor::item() const { return ::mmgrad::item(*this); }
void Tensor::backward(const Tensor& grad, bool retain_graph) const {
  autograd::backward(*this, grad, retain_graph);
}

}  // namespace mmgrad
