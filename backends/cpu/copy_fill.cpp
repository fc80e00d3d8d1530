// copy (with dtype conversion), fill, arange, the random fills and assert_all.
#include <algorithm>
#include <cmath>

#include "backends/cpu/dispatch.h"
#include "backends/cpu/kernels.h"
#include "backends/cpu/strided_loop.h"

namespace mmgrad::cpu {

namespace {

// A contiguous copy of a transposed view (the source is dense along some dim k but not along
// the last one) walks tiles, so both sides stay in cache: row by row, every read of the
// source would touch a new cache line.
template <typename T>
bool copy_in_tiles(const Tensor& dst, const Tensor& src) {
  const int nd = dst.dim();
  if (nd < 2 || !dst.is_contiguous() || src.strides()[nd - 1] == 1 || dst.numel() < 4096) return false;
  int k = -1;
  for (int d = 0; d < nd - 1; ++d)
    if (src.strides()[d] == 1 && src.shape()[d] > 1) k = d;
  if (k < 0) return false;
  constexpr int64_t kTile = 32;
  const Shape& shape = dst.shape();
  const int64_t rows = shape[k], cols = shape[nd - 1];
  const int64_t row_tiles = (rows + kTile - 1) / kTile, col_tiles = (cols + kTile - 1) / kTile;
  int64_t n_outer = 1;
  for (int d = 0; d < nd - 1; ++d)
    if (d != k) n_outer *= shape[d];
  const T* sp = static_cast<const T*>(src.raw_data());
  T* dp = static_cast<T*>(dst.raw_data());
  const int64_t d_row = dst.strides()[k], s_col = src.strides()[nd - 1];
  parallel_for(0, n_outer * row_tiles * col_tiles, 4, [&](int64_t lo, int64_t hi) {
    for (int64_t task = lo; task < hi; ++task) {
      int64_t ct = task % col_tiles, rt = (task / col_tiles) % row_tiles;
      int64_t rest = task / (col_tiles * row_tiles), so = 0, doff = 0;
      for (int d = nd - 2; d >= 0; --d) {
        if (d == k) continue;
        int64_t i = rest % shape[d];
        rest /= shape[d];
        so += i * src.strides()[d];
        doff += i * dst.strides()[d];
      }
      const int64_t r0 = rt * kTile, r1 = std::min(rows, r0 + kTile);
      const int64_t c0 = ct * kTile, c1 = std::min(cols, c0 + kTile);
      for (int64_t r = r0; r < r1; ++r)  // destination-dense order; the tile's source lines stay cached
        for (int64_t c = c0; c < c1; ++c) dp[doff + r * d_row + c] = sp[so + r + c * s_col];
    }
  });
  return true;
}

}  // namespace

void copy(const Tensor& dst, const Tensor& src) {
  if (dst.dtype() == src.dtype()) {
    bool done = false;
    dispatch_all(dst.dtype(), [&](auto tag) { done = copy_in_tiles<decltype(tag)>(dst, src); });
    if (done) return;
  }
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

void arange(const Tensor& dst, double start, double step) {
  dispatch_all(dst.dtype(), [&](auto tag) {
    using T = decltype(tag);
    T* d = dst.data_ptr<T>();
    for (int64_t i = 0; i < dst.numel(); ++i) d[i] = convert<T>(start + static_cast<double>(i) * step);
  });
}

void assert_all(const Tensor& cond, int64_t message_id) {
  const bool* c = cond.data_ptr<bool>();
  for (int64_t i = 0; i < cond.numel(); ++i)
    if (!c[i]) {
      auto [op, message] = assert_message(message_id);
      fail(op, message);
    }
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
