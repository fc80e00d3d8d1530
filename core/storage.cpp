#include "core/storage.h"

#include <cstdlib>
#include <string>

#include "core/error.h"

namespace mmgrad {
namespace {

// 64-byte aligned host memory: one cache line, and the widest AVX-512 load.
class CpuAllocator final : public Allocator {
 public:
  void* allocate(size_t nbytes) override {
    if (nbytes == 0) return nullptr;
    size_t rounded = (nbytes + 63) / 64 * 64;
    void* p = std::aligned_alloc(64, rounded);
    if (!p)
      fail("allocate", "out of memory: could not allocate " + std::to_string(nbytes) +
                           " bytes on cpu");
    return p;
  }
  void deallocate(void* ptr, size_t) override { std::free(ptr); }
};

CpuAllocator g_cpu_allocator;
Allocator* g_allocators[kNumDeviceTypes] = {&g_cpu_allocator, nullptr};

}  // namespace

void register_allocator(DeviceType type, Allocator* allocator) {
  g_allocators[static_cast<int>(type)] = allocator;
}

Allocator& allocator_for(Device device) {
  Allocator* a = g_allocators[static_cast<int>(device.type)];
  if (!a)
    fail("allocate", "device " + device.str() + " is not available in this build of mmgrad");
  return *a;
}

Storage::Storage(size_t nbytes, Device device)
    : nbytes_(nbytes), device_(device), allocator_(&allocator_for(device)) {
  data_ = allocator_->allocate(nbytes);
}

Storage::~Storage() {
  if (data_) allocator_->deallocate(data_, nbytes_);
}

}  // namespace mmgrad
