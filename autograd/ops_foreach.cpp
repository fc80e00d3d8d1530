// Ops over a list of tensors at once (an optimizer's view of the parameters), through the
// backend's fused kernel: a fixed number of launches instead of a few per tensor.
#include "autograd/op_helpers.h"

namespace mmgrad {

Tensor sum_of_squares(const std::vector<Tensor>& tensors) {
  const char* op = "sum_of_squares";
  NoGradGuard no_grad;
  if (tensors.empty()) return Tensor::empty({0}, DType::F64);
  std::vector<Tensor> dense;
  dense.reserve(tensors.size());
  for (size_t i = 0; i < tensors.size(); ++i) {
    const Tensor& t = tensors[i];
    detail::check_floating(t, op);
    if (i > 0) detail::check_compatible(tensors[0], t, op);
    dense.push_back(contiguous(t));
  }
  const Device device = tensors[0].device();
  Tensor out = Tensor::empty({static_cast<int64_t>(tensors.size())}, DType::F64, device);
  if (backend_for(device).sum_squares) {
    MMGRAD_DISPATCH(sum_squares, device, out, dense);
    return out;
  }
  std::vector<Tensor> sums;  // the composed form, for a backend without the kernel
  for (const Tensor& t : dense) sums.push_back(sum(square(t.to(DType::F64))));
  return stack(sums, 0);
}

}  // namespace mmgrad
