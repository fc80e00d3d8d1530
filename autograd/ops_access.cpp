// Reading values back to the host.
#include <cmath>

#include "autograd/op_helpers.h"
#include "core/host_transfer_ban.h"

namespace mmgrad {

template <typename T>
std::vector<T> to_vector(const Tensor& t) {
  detail::check_defined(t, "to_vector", "x");
  check_host_transfer_allowed("to_vector", "a tensor read back to the host");
  NoGradGuard no_grad;
  Tensor host = contiguous(to(to(t, Device::cpu()), dtype_of<T>::value));
  const T* p = host.data_ptr<T>();
  return std::vector<T>(p, p + host.numel());
}
template std::vector<float> to_vector(const Tensor&);
template std::vector<double> to_vector(const Tensor&);
template std::vector<int32_t> to_vector(const Tensor&);
template std::vector<int64_t> to_vector(const Tensor&);

double item(const Tensor& t) {
  detail::check_defined(t, "item", "x");
  if (t.numel() != 1)
    fail("item", "only a tensor with one element has an item", {describe("x", t)});
  return to_vector<double>(t)[0];
}

void assert_all(const Tensor& cond, const char* op, const std::string& message) {
  detail::check_defined(cond, "assert_all", "cond");
  if (cond.dtype() != DType::Bool) fail("assert_all", "expects a Bool tensor", {describe("cond", cond)});
  if (cond.numel() == 0) return;
  NoGradGuard no_grad;
  MMGRAD_DISPATCH(assert_all, cond.device(), contiguous(cond), register_assert_message(op, message));
}

bool allclose(const Tensor& a, const Tensor& b, double rtol, double atol) {
  detail::check_defined(a, "allclose", "a");
  detail::check_defined(b, "allclose", "b");
  if (a.shape() != b.shape()) return false;
  auto va = to_vector<double>(a), vb = to_vector<double>(b);
  for (size_t i = 0; i < va.size(); ++i) {
    if (std::isnan(va[i]) || std::isnan(vb[i])) return false;
    if (va[i] == vb[i]) continue;  // equal infinities
    if (!(std::abs(va[i] - vb[i]) <= atol + rtol * std::abs(vb[i]))) return false;
  }
  return true;
}

}  // namespace mmgrad
