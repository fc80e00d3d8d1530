// Creation, conversion and copies.
#include <cmath>
#include <cstring>

#include "autograd/op_helpers.h"
#include "core/host_transfer_ban.h"

namespace mmgrad {
using autograd::record;
using autograd::SavedTensor;

Tensor empty(const Shape& shape, DType dtype, Device device) {
  return Tensor::empty(shape, dtype, device);
}

Tensor full(const Shape& shape, double value, DType dtype, Device device) {
  detail::check_value_fits(dtype, value, "full");
  Tensor t = Tensor::empty(shape, dtype, device);
  MMGRAD_DISPATCH(fill, device, t, value);
  return t;
}
Tensor zeros(const Shape& shape, DType dtype, Device device) { return full(shape, 0, dtype, device); }
Tensor ones(const Shape& shape, DType dtype, Device device) { return full(shape, 1, dtype, device); }
Tensor zeros_like(const Tensor& t) { return zeros(t.shape(), t.dtype(), t.device()); }
Tensor ones_like(const Tensor& t) { return ones(t.shape(), t.dtype(), t.device()); }
Tensor full_like(const Tensor& t, double value) { return full(t.shape(), value, t.dtype(), t.device()); }
Tensor scalar_tensor(double value, DType dtype, Device device) { return full({}, value, dtype, device); }

Tensor arange(double start, double end, double step, DType dtype, Device device) {
  if (step == 0 || !std::isfinite(start) || !std::isfinite(end) || !std::isfinite(step))
    fail("arange", fmt::format("invalid range start={} end={} step={}", start, end, step));
  const double count = std::ceil((end - start) / step);
  if (count > static_cast<double>(int64_t(1) << 48))
    fail("arange", fmt::format("[{}, {}) in steps of {} has {:.3g} elements: too many", start, end,
                               step, count));
  const int64_t n = std::max<int64_t>(0, static_cast<int64_t>(count));
  // Filled on the device itself: no upload, so a captured step may use it.
  Tensor values = Tensor::empty({n}, dtype, device);
  if (n > 0) MMGRAD_DISPATCH(arange, device, values, start, step);
  return values;
}

template <typename T>
Tensor from_data(const std::vector<T>& values, const Shape& shape, Device device) {
  check_shape(shape, "from_data");
  check_host_transfer_allowed("from_data", "a tensor made from host values");
  if (static_cast<int64_t>(values.size()) != numel_of(shape))
    fail("from_data", fmt::format("{} values do not fill shape {} ({} elements)", values.size(),
                                  shape_str(shape), numel_of(shape)));
  Tensor host = Tensor::empty(shape, dtype_of<T>::value, Device::cpu());
  if (!values.empty()) std::memcpy(host.raw_data(), values.data(), values.size() * sizeof(T));
  return device == Device::cpu() ? host : host.to(device);
}
template Tensor from_data(const std::vector<float>&, const Shape&, Device);
template Tensor from_data(const std::vector<double>&, const Shape&, Device);
template Tensor from_data(const std::vector<int32_t>&, const Shape&, Device);
template Tensor from_data(const std::vector<int64_t>&, const Shape&, Device);
template Tensor from_data(const std::vector<BFloat16>&, const Shape&, Device);

// Random draws are generated in f32/f64 and converted for other dtypes, so the values a
// seed gives do not depend on the device.
static Tensor random_tensor(const Shape& shape, DType dtype, Device device, Generator* gen,
                            bool normal, double a, double b) {
  check_host_transfer_allowed(normal ? "randn" : "rand", "a random draw keyed by a host generator (a replay would "
                              "repeat its numbers)");
  Generator& g = gen ? *gen : default_generator();
  DType draw_dtype = dtype == DType::F64 ? DType::F64 : DType::F32;
  Tensor t = Tensor::empty(shape, draw_dtype, device);
  uint64_t key = g.next_key();
  if (normal)
    MMGRAD_DISPATCH(random_normal, device, t, key, a, b);
  else
    MMGRAD_DISPATCH(random_uniform, device, t, key, a, b);
  return draw_dtype == dtype ? t : t.to(dtype);
}

Tensor rand(const Shape& shape, DType dtype, Device device, Generator* gen) {
  if (!is_floating(dtype)) fail("rand", "rand makes floating tensors; use randint for integers");
  Tensor t = random_tensor(shape, DType::F32 == dtype || dtype == DType::F64 ? dtype : DType::F32,
                           device, gen, false, 0.0, 1.0);
  if (dtype != DType::BF16) return t;
  // bf16 has 8 significant bits: values just below 1 would round up to 1.
  return minimum(t, 1.0 - 0x1p-8).to(DType::BF16);
}

Tensor randn(const Shape& shape, DType dtype, Device device, Generator* gen) {
  if (!is_floating(dtype)) fail("randn", "randn makes floating tensors");
  return random_tensor(shape, dtype, device, gen, true, 0.0, 1.0);
}

Tensor randint(int64_t low, int64_t high, const Shape& shape, DType dtype, Device device,
               Generator* gen) {
  if (high <= low) fail("randint", fmt::format("empty range [{}, {})", low, high));
  // Uniform doubles in [0,1) carry 53 bits: exact enough for any practical range.
  // u * (high - low) lies in [0, high - low); converting to an integer truncates, which is
  // floor for non-negative values.
  Tensor u = random_tensor(shape, DType::F64, device, gen, false, 0.0, static_cast<double>(high - low));
  Tensor offsets = minimum(u.to(DType::I64), static_cast<double>(high - low - 1));  // guard rounding up
  return add(offsets, static_cast<double>(low)).to(dtype);
}

Tensor to(const Tensor& t, DType dtype) {
  detail::check_defined(t, "to", "x");
  if (t.dtype() == dtype) return t;
  Tensor out = Tensor::empty(t.shape(), dtype, t.device());
  MMGRAD_DISPATCH(copy, t.device(), out, t);
  if (is_floating(dtype) && is_floating(t.dtype())) {
    DType from = t.dtype();
    record("to_dtype", out, {t}, [from](const Tensor& g) { return std::vector<Tensor>{to(g, from)}; });
  }
  return out;
}

Tensor to(const Tensor& t, Device device) {
  detail::check_defined(t, "to", "x");
  if (t.device() == device) return t;
  check_host_transfer_allowed("to", "a copy between devices");
  Tensor src = t.contiguous();
  Tensor out = Tensor::empty(t.shape(), t.dtype(), device);
  // The copy kernel of whichever side is not the CPU knows how to cross (host <-> device).
  Device side = device.type != DeviceType::CPU ? device : t.device();
  MMGRAD_DISPATCH(copy, side, out, src);
  Device from = t.device();
  record("to_device", out, {t}, [from](const Tensor& g) { return std::vector<Tensor>{to(g, from)}; });
  return out;
}

Tensor contiguous(const Tensor& t) {
  detail::check_defined(t, "contiguous", "x");
  if (t.is_contiguous()) return t;
  return clone(t);
}

Tensor clone(const Tensor& t) {
  detail::check_defined(t, "clone", "x");
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  MMGRAD_DISPATCH(copy, t.device(), out, t);
  record("clone", out, {t}, [](const Tensor& g) { return std::vector<Tensor>{g}; });
  return out;
}

Tensor detach(const Tensor& t) {
  detail::check_defined(t, "detach", "x");
  return Tensor::alias(t, t.shape(), t.strides(), t.offset());
}

}  // namespace mmgrad
