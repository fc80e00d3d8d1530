// copy (with dtype conversion), fill and the random fills.
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/strided_loop.h"

namespace mmgrad::cpu {

void copy(const Tensor& dst, const Tensor& src) {
  StridedLoop<2> loop(dst.shape(), {&dst, &src});
  dispatch_all(dst.dtype(), [&](auto dtag) {
    using D = decltype(dtag);
    dispatch_all(src.dtype(), [&](auto stag) {
      using S = decltype(stag);
      loop.run([](std::array<char*, 2> p, const std::array<int64_t, 2>& st, int64_t n) {
        if (st[0] == sizeof(D) && st[1] == sizeof(S)) {
          D* d = reinterpret_cast<D*>(p[0]);
          const S* s = reinterpret_cast<const S*>(p[1]);
          for (int64_t i = 0; i < n; ++i) d[i] = convert<D>(s[i]);
        } else {
          for (int64_t i = 0; i < n; ++i)
            *reinterpret_cast<D*>(p[0] + i * st[0]) =
                convert<D>(*reinterpret_cast<const S*>(p[1] + i * st[1]));
        }
      });
    });
  });
}

void fill(const Tensor& dst, double value) {
  StridedLoop<1> loop(dst.shape(), {&dst});
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    const T v = convert<T>(value);
    loop.run([v](std::array<char*, 1> p, const std::array<int64_t, 1>& st, int64_t n) {
      for (int64_t i = 0; i < n; ++i) *reinterpret_cast<T*>(p[0] + i * st[0]) = v;
    });
  });
}

// Element i of a random tensor is drawn from counter i, whatever the thread split.
template <typename Draw>
static void random_fill(const Tensor& dst, const char* op, Draw draw, bool upper_exclusive = false,
                        double upper = 0) {
  if (!dst.is_contiguous()) fail(op, "random fills need a contiguous destination");
  dispatch_float(dst.dtype(), op, [&](auto tag) {
    using T = decltype(tag);
    T* d = dst.data_ptr<T>();
    parallel_for(0, dst.numel(), 1 << 14, [&](int64_t lo, int64_t hi) {
      for (int64_t i = lo; i < hi; ++i) d[i] = static_cast<T>(draw(static_cast<uint64_t>(i)));
      if (upper_exclusive) {
        // Rounding to T can land exactly on `upper`; keep the interval half-open.
        const T top = static_cast<T>(upper), below = std::nextafter(top, static_cast<T>(-INFINITY));
        for (int64_t i = lo; i < hi; ++i)
          if (d[i] >= top) d[i] = below;
      }
    });
  });
}

void random_uniform(const Tensor& dst, uint64_t key, double low, double high) {
  random_fill(dst, "rand", [=](uint64_t i) { return low + (high - low) * Philox::uniform(key, i); },
              true, high);
}

void random_normal(const Tensor& dst, uint64_t key, double mean, double std) {
  random_fill(dst, "randn", [=](uint64_t i) { return mean + std * Philox::normal(key, i); });
}

}  // namespace mmgrad::cpu
