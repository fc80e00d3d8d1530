// copy (any strides, dtype conversion, host <-> device), fill and the random fills.
#include <cstring>
#include <mutex>

#include "backends/cpu/kernels.h"
#include "backends/cuda/graph.h"
#include "backends/cuda/kernels.h"
#include "backends/cuda/launch.cuh"
#include "core/rng.h"

namespace mmgrad::cuda {
namespace {

bool on_cuda(const Tensor& t) { return t.device().type == DeviceType::CUDA; }

template <typename D, typename S>
void device_copy_typed(const Tensor& dst, const Tensor& src, const Strided<2>& s) {
  D* d = static_cast<D*>(dst.raw_data());
  const S* p = static_cast<const S*>(src.raw_data());
  // Rounding to bf16 is named apart: it is mixed precision's price for bf16 GEMMs
  // (bf16_operand.h), and the kernel profile should show it.
  const char* name = std::is_same_v<D, Bf16> && std::is_same_v<S, float> ? "copy (round f32 to bf16)" : "copy (strided)";
  launch_n(dst.numel(), name, [=] __device__(int64_t i) {
    int64_t off[2];
    s.offsets(i, off);
    d[off[0]] = convert<D>(p[off[1]]);
  });
}

// dst <- src, both on the GPU, any strides and dtypes.
void device_copy(const Tensor& dst, const Tensor& src) {
  const int64_t n = dst.numel();
  if (n == 0) return;
  if (dst.dtype() == src.dtype() && dst.is_contiguous() && src.is_contiguous()) {
    ProfileScope profile("copy (memcpy)");
    check(cudaMemcpyAsync(dst.raw_data(), src.raw_data(), n * dst.element_size(), cudaMemcpyDeviceToDevice,
                          stream()),
          "copy");
    return;
  }
  const Strided<2> s = make_strided<2>(dst.shape(), {&dst, &src}, "copy");
  dispatch_all(dst.dtype(), [&](auto dtag) {
    dispatch_all(src.dtype(), [&](auto stag) { device_copy_typed<decltype(dtag), decltype(stag)>(dst, src, s); });
  });
}

// A contiguous tensor with t's values, dtype and device (t itself when it already is).
Tensor dense(const Tensor& t) {
  if (t.is_contiguous()) return t;
  Tensor out = Tensor::empty(t.shape(), t.dtype(), t.device());
  if (on_cuda(t))
    device_copy(out, t);
  else
    cpu::copy(out, t);
  return out;
}

// Uploads go through pinned (page-locked) host buffers: the bytes are copied there on the
// host, the DMA to the GPU is queued on the stream, and the host moves on at once; an
// event marks when the buffer may be reused. Two buffers alternate, so the next batch can
// be staged while the last one is still in flight. A pageable source would make
// cudaMemcpyAsync wait, and the caller's buffer may be freed right after this returns.
class PinnedStaging {
 public:
  void upload(void* device_dst, const void* host_src, size_t bytes) {
    std::lock_guard<std::mutex> lock(mu_);
    Slot& s = slots_[next_];
    next_ = (next_ + 1) % kSlots;
    if (s.in_flight) check(cudaEventSynchronize(s.done), "copy");
    if (s.capacity < bytes) {
      if (s.buffer) check(cudaFreeHost(s.buffer), "copy");
      s.buffer = nullptr;
      s.capacity = 0;
      check(cudaMallocHost(&s.buffer, bytes), "copy (pinned staging buffer)");
      s.capacity = bytes;
    }
    if (!s.done) check(cudaEventCreateWithFlags(&s.done, cudaEventDisableTiming), "copy");
    std::memcpy(s.buffer, host_src, bytes);
    check(cudaMemcpyAsync(device_dst, s.buffer, bytes, cudaMemcpyHostToDevice, stream()), "copy");
    check(cudaEventRecord(s.done, stream()), "copy");
    s.in_flight = true;
  }

 private:
  static constexpr int kSlots = 2;
  struct Slot {
    void* buffer = nullptr;
    size_t capacity = 0;
    cudaEvent_t done = nullptr;
    bool in_flight = false;
  };
  std::mutex mu_;
  Slot slots_[kSlots];
  int next_ = 0;
};

void upload(void* device_dst, const void* host_src, size_t bytes) {
  static PinnedStaging* staging = new PinnedStaging;  // never destroyed (process-lifetime buffers)
  staging->upload(device_dst, host_src, bytes);
}

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  if (dst.numel() == 0) return;
  if (on_cuda(dst) && on_cuda(src)) return device_copy(dst, src);
  // A recorded copy would replay from a staging buffer holding other data by then.
  if (capturing()) fail("copy", "a copy between host and device inside a CUDA graph capture");
  const size_t bytes_src = src.numel() * src.element_size();
  if (on_cuda(dst)) {
    ProfileScope profile("copy host->device");
    // Host -> device: a dense copy of the source in its own dtype goes up through a pinned
    // staging buffer (so the host does not wait for the GPU), then is converted and
    // scattered on the GPU if the destination needs it.
    Tensor host = dense(src);
    if (dst.dtype() == src.dtype() && dst.is_contiguous()) {
      upload(dst.raw_data(), host.raw_data(), bytes_src);
      return;
    }
    Tensor staged = Tensor::empty(src.shape(), src.dtype(), dst.device());
    upload(staged.raw_data(), host.raw_data(), bytes_src);
    device_copy(dst, staged);
    return;
  }
  // Device -> host: download a dense copy in the source's dtype, then convert on the CPU.
  Tensor dev = dense(src);
  ProfileScope profile("copy device->host");
  if (dst.dtype() == src.dtype() && dst.is_contiguous()) {
    check(cudaMemcpyAsync(dst.raw_data(), dev.raw_data(), bytes_src, cudaMemcpyDeviceToHost, stream()), "copy");
    synchronize();
    return;
  }
  Tensor host = Tensor::empty(src.shape(), src.dtype(), Device::cpu());
  check(cudaMemcpyAsync(host.raw_data(), dev.raw_data(), bytes_src, cudaMemcpyDeviceToHost, stream()), "copy");
  synchronize();
  cpu::copy(dst, host);
}

namespace {
template <typename T>
void fill_typed(const Tensor& dst, double value) {
  const Strided<1> s = make_strided<1>(dst.shape(), {&dst}, "fill");
  T* d = static_cast<T*>(dst.raw_data());
  const T v = convert_on_host<T>(value);
  launch_n(dst.numel(), "fill", [=] __device__(int64_t i) {
    int64_t off[1];
    s.offsets(i, off);
    d[off[0]] = v;
  });
}
}  // namespace

void fill(const Tensor& dst, double value) {
  dispatch_all(dst.dtype(), [&](auto tag) { fill_typed<decltype(tag)>(dst, value); });
}

namespace {
template <typename T>
void arange_typed(const Tensor& dst, double start, double step) {
  T* d = static_cast<T*>(dst.raw_data());
  // Multiply and add rounded apart, as the CPU does (nvcc would fuse them into one FMA).
  launch_n(dst.numel(), "arange", [=] __device__(int64_t i) {
    d[i] = convert<T>(__dadd_rn(start, __dmul_rn(static_cast<double>(i), step)));
  });
}
}  // namespace

void arange(const Tensor& dst, double start, double step) {
  dispatch_all(dst.dtype(), [&](auto tag) { arange_typed<decltype(tag)>(dst, start, step); });
}

// A false element records the check's id; raise_device_error (context.cpp) turns it into the
// registered message at the next synchronisation.
void assert_all(const Tensor& cond, int64_t message_id) {
  const bool* c = static_cast<const bool*>(cond.raw_data());
  int64_t* rec = device_error_record();
  launch_n(cond.numel(), "assert_all", [=] __device__(int64_t i) {
    if (!c[i]) record_device_error(rec, kAssertionFailed, kOpAssert, message_id, 0);
  });
}

namespace {
// The same draws as the CPU (core/rng.h), element i from counter i.
template <typename T>
void random_fill_typed(const Tensor& dst, uint64_t key, double a, double b, bool normal, const char* op) {
  T* d = static_cast<T*>(dst.raw_data());
  const T top = static_cast<T>(b);
  const T below_top = std::nextafter(top, static_cast<T>(-INFINITY));
  launch_n(dst.numel(), op, [=] __device__(int64_t i) {
    if (normal) {
      d[i] = static_cast<T>(a + b * Philox::normal(key, static_cast<uint64_t>(i)));
    } else {
      // Rounding to T can land exactly on `high`; keep the interval half-open.
      const T v = static_cast<T>(a + (b - a) * Philox::uniform(key, static_cast<uint64_t>(i)));
      d[i] = v >= top ? below_top : v;
    }
  });
}

void random_fill(const Tensor& dst, uint64_t key, double a, double b, bool normal, const char* op) {
  if (!dst.is_contiguous()) fail(op, "random fills need a contiguous destination");
  dispatch_float(dst.dtype(), op, [&](auto tag) { random_fill_typed<decltype(tag)>(dst, key, a, b, normal, op); });
}
}  // namespace

void random_uniform(const Tensor& dst, uint64_t key, double low, double high) {
  random_fill(dst, key, low, high, false, "rand");
}

void random_normal(const Tensor& dst, uint64_t key, double mean, double std) {
  random_fill(dst, key, mean, std, true, "randn");
}

}  // namespace mmgrad::cuda
