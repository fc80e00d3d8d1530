// Reference-counted memory shared by a tensor and all its views. Also carries the version
// counter that autograd uses to detect in-place changes to tensors it saved.
#pragma once
#include <atomic>
#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>

#include "core/device.h"

namespace mmgrad {

// One allocator per device type. A backend registers its own (CUDA: a caching allocator).
class Allocator {
 public:
  virtual ~Allocator() = default;
  virtual void* allocate(size_t nbytes) = 0;  // throws mmgrad::Error when out of memory
  virtual void deallocate(void* ptr, size_t nbytes) = 0;
};

void register_allocator(DeviceType type, Allocator* allocator);
Allocator& allocator_for(Device device);  // throws if no backend for that device is built in

class Storage {
 public:
  Storage(size_t nbytes, Device device);
  // Memory owned elsewhere (a NumPy array's buffer): used in place, never freed here;
  // `release` runs when the last tensor using it is gone (e.g. drops the array's reference).
  Storage(void* data, size_t nbytes, Device device, std::function<void()> release);
  ~Storage();
  Storage(const Storage&) = delete;
  Storage& operator=(const Storage&) = delete;

  void* data() const { return data_; }
  size_t nbytes() const { return nbytes_; }
  Device device() const { return device_; }
  uint64_t version() const { return version_.load(std::memory_order_relaxed); }
  void bump_version() { version_.fetch_add(1, std::memory_order_relaxed); }

 private:
  void* data_ = nullptr;
  size_t nbytes_ = 0;
  Device device_;
  Allocator* allocator_ = nullptr;
  std::function<void()> release_;  // external memory only
  std::atomic<uint64_t> version_{0};
};

}  // namespace mmgrad
