#include "core/storage.h"

#include <string>

#include "core/error.h"
#include "core/host_allocator.h"

namespace mmgrad {
namespace {
// A function-local table: tensors made during static initialisation still find the CPU's.
Allocator** allocators() {
  static Allocator* table[kNumDeviceTypes] = {&host_allocator(), nullptr};
  return table;
}
}  // namespace

void register_allocator(DeviceType type, Allocator* allocator) {
  allocators()[static_cast<int>(type)] = allocator;
}

Allocator& allocator_for(Device device) {
  Allocator* a = allocators()[static_cast<int>(device.type)];
  if (!a)
    fail("allocate", "device " + device.str() + " is not available in this build of mmgrad");
  return *a;
}

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(nbytes);
}

Storage::Storage(void* data, size_t nbytes, Device device, std::function<void()> release)
    : data_(data), nbytes_(nbytes), device_(device), release_(std::move(release)) {}

Storage::~Storage() {
  if (release_) release_();
  else if (data_ && allocator_) allocator_->deallocate(data_, nbytes_);
}

}  // namespace mmgrad
