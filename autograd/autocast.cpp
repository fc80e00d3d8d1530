#include "autograd/autocast.h"

#include <memory>
#include <vector>

#include "autograd/op_helpers.h"
#include "core/matrix_copy.h"

namespace mmgrad {
namespace {
thread_local uint8_t t_autocast = 0;  // bit (1 << device type) per guarded device type

uint8_t bit(DeviceType device) { return static_cast<uint8_t>(1u << static_cast<int>(device)); }

// Rounded copies still alive on this thread, by the view they were rounded from. Weak
// references: the cache never keeps a copy (or its source) alive; expired entries are
// dropped as new ones come.
struct RoundedCopy {
  const Storage* source_address;   // compared first: cheap, and most entries differ there
  std::weak_ptr<Storage> source;   // the storage rounded from
  std::weak_ptr<Storage> rounded;  // the copy's (its views come and go: saved tensors alias it)
  Shape rounded_strides;
  int64_t offset;
  Shape shape, strides;
  DType dtype;
  uint64_t version;
};
thread_local std::vector<RoundedCopy> t_rounded;

bool same_view(const RoundedCopy& c, const Tensor& t) {
  // The address matches only a live storage: `source` alive means it was not reused.
  return c.source_address == &t.storage() && c.offset == t.offset() && c.version == t.version() &&
         c.dtype == t.dtype() && c.shape == t.shape() && c.strides == t.strides() && !c.source.expired();
}
}  // namespace

AutocastBf16::AutocastBf16(DeviceType device, bool on) : device_(device), previous_((t_autocast & bit(device)) != 0) {
  t_autocast = on ? (t_autocast | bit(device)) : (t_autocast & ~bit(device));
}
AutocastBf16::~AutocastBf16() {
  t_autocast = previous_ ? (t_autocast | bit(device_)) : (t_autocast & ~bit(device_));
}

bool autocast_bf16(DeviceType device) { return (t_autocast & bit(device)) != 0; }

uint8_t detail::autocast_state() { return t_autocast; }
void detail::set_autocast_state(uint8_t state) { t_autocast = state; }

bool detail::autocasts(const Tensor& a, const Tensor& b) {
  return a.dtype() == DType::F32 && b.dtype() == DType::F32 && autocast_bf16(a.device().type);
}

Tensor detail::rounded_to_bf16(const Tensor& t) {
  // Newest first: the copy asked for again is usually the one just made.
  for (auto it = t_rounded.rbegin(); it != t_rounded.rend(); ++it) {
    const RoundedCopy& c = *it;
    if (!same_view(c, t)) continue;
    std::shared_ptr<Storage> r = c.rounded.lock();
    if (!r) break;
    auto view = std::make_shared<TensorImpl>();
    view->storage = std::move(r);
    view->shape = t.shape();
    view->strides = c.rounded_strides;
    view->dtype = DType::BF16;
    return Tensor(std::move(view));
  }
  const uint64_t version = t.version();  // before the copy reads the values
  Tensor rounded = copy_as_matrices(t, DType::BF16, [](const Tensor& dst, const Tensor& src) {
    MMGRAD_DISPATCH(copy, src.device(), dst, src);
  });
  std::erase_if(t_rounded, [](const RoundedCopy& c) { return c.source.expired() || c.rounded.expired(); });
  t_rounded.push_back({&t.storage(), t.impl().storage, rounded.impl().storage, rounded.strides(), t.offset(),
                       t.shape(), t.strides(), t.dtype(), version});
  return rounded;
}

void detail::forget_rounded_copies() { t_rounded.clear(); }

}  // namespace mmgrad
