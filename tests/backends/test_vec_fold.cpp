// vec_fold.h's row reductions (GCC vector extensions) against plain loops, compiled for the
// baseline ISA, x86-64-v3 (AVX2) and x86-64-v4 (AVX-512) and run in each version this CPU
// supports: the multiversioned kernels that inline them (attention, LayerNorm) only ever run
// their best version on a given machine, so without this an AVX-512 machine would never run
// the AVX2 lowering and vice versa. Also the non-overflowing exp the attention rows use.
#include <gtest/gtest.h>

#include <cmath>
#include <cstdint>
#include <limits>
#include <random>
#include <string>
#include <vector>

#include "backends/cpu/vec_fold.h"
#include "backends/cpu/vec_math.h"

namespace {

using mmgrad::cpu::row_dot;
using mmgrad::cpu::row_max;
using mmgrad::cpu::vec_lanes;
using mmgrad::cpu::whole_vectors;

// out = {max of x, sum of x, sum of x * y}.
template <typename T>
inline __attribute__((always_inline)) void folds(const T* x, const T* y, int64_t n, T* out) {
  out[0] = row_max(x, n);
  out[1] = row_dot<T>(x, nullptr, n);
  out[2] = row_dot(x, y, n);
}

using FoldsF = void (*)(const float*, const float*, int64_t, float*);
using FoldsD = void (*)(const double*, const double*, int64_t, double*);

void folds_base_f(const float* x, const float* y, int64_t n, float* out) { folds(x, y, n, out); }
void folds_base_d(const double* x, const double* y, int64_t n, double* out) { folds(x, y, n, out); }
#if defined(__x86_64__) && !defined(__clang__)
#define MMGRAD_TEST_ISAS 1
__attribute__((target("arch=x86-64-v3"))) void folds_v3_f(const float* x, const float* y, int64_t n, float* out) {
  folds(x, y, n, out);
}
__attribute__((target("arch=x86-64-v3"))) void folds_v3_d(const double* x, const double* y, int64_t n, double* out) {
  folds(x, y, n, out);
}
__attribute__((target("arch=x86-64-v4"))) void folds_v4_f(const float* x, const float* y, int64_t n, float* out) {
  folds(x, y, n, out);
}
__attribute__((target("arch=x86-64-v4"))) void folds_v4_d(const double* x, const double* y, int64_t n, double* out) {
  folds(x, y, n, out);
}
#endif

struct Version {
  std::string name;
  FoldsF f;
  FoldsD d;
};

std::vector<Version> versions() {
  std::vector<Version> v{{"baseline", folds_base_f, folds_base_d}};
#ifdef MMGRAD_TEST_ISAS
  __builtin_cpu_init();
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) v.push_back({"x86-64-v3", folds_v3_f, folds_v3_d});
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") && __builtin_cpu_supports("avx512vl") &&
      __builtin_cpu_supports("avx512dq"))
    v.push_back({"x86-64-v4", folds_v4_f, folds_v4_d});
#endif
  return v;
}

// Checks one version on rows of every whole-vector length up to 8 vectors: the max exactly
// (NaN ignored, -inf rows stay -inf), the sums within the reordering's rounding.
template <typename T, typename Fn>
void check(const std::string& name, Fn fn) {
  std::mt19937 rng(7);
  std::normal_distribution<double> normal(0.0, 1.0);
  const T inf = std::numeric_limits<T>::infinity();
  for (int64_t n = vec_lanes<T>(); n <= 8 * vec_lanes<T>(); n += vec_lanes<T>()) {
    ASSERT_TRUE(whole_vectors<T>(n));
    for (int pattern = 0; pattern < 3; ++pattern) {
      std::vector<T> x(static_cast<size_t>(n)), y(static_cast<size_t>(n));
      for (int64_t j = 0; j < n; ++j) {
        x[static_cast<size_t>(j)] = static_cast<T>(normal(rng));
        y[static_cast<size_t>(j)] = static_cast<T>(normal(rng));
      }
      if (pattern == 1) x[static_cast<size_t>(n / 3)] = std::numeric_limits<T>::quiet_NaN();  // max ignores it
      if (pattern == 2)
        for (int64_t j = 0; j < n; ++j)
          if (j != n - 1) x[static_cast<size_t>(j)] = -inf;  // a masked row: only the last key is visible
      T want_max = -inf;
      double want_sum = 0, want_dot = 0, scale = 0;
      for (int64_t j = 0; j < n; ++j) {
        const T v = x[static_cast<size_t>(j)];
        if (v > want_max) want_max = v;
        want_sum += static_cast<double>(v);
        want_dot += static_cast<double>(v) * static_cast<double>(y[static_cast<size_t>(j)]);
        scale += std::abs(static_cast<double>(v) * static_cast<double>(y[static_cast<size_t>(j)])) + std::abs(v);
      }
      T got[3];
      fn(x.data(), y.data(), n, got);
      const std::string where = name + ", n = " + std::to_string(n) + ", pattern " + std::to_string(pattern);
      EXPECT_EQ(got[0], want_max) << where;
      if (pattern == 0) {
        const double tol = 4.0 * static_cast<double>(std::numeric_limits<T>::epsilon()) * scale;
        EXPECT_NEAR(static_cast<double>(got[1]), want_sum, tol) << where;
        EXPECT_NEAR(static_cast<double>(got[2]), want_dot, tol) << where;
      } else if (pattern == 1) {
        EXPECT_TRUE(std::isnan(got[1])) << where;  // sums keep the NaN
      }
    }
  }
}

TEST(VecFold, RowMaxAndSumsMatchPlainLoopsInEveryIsaVersion) {
  for (const Version& v : versions()) {
    SCOPED_TRACE(v.name);
    check<float>(v.name, v.f);
    check<double>(v.name, v.d);
  }
}

TEST(VecFold, NonOverflowingExp) {
  using mmgrad::cpu::exp_nonpositive_fast;
  // Within 3 ulp of libm from -87 up to 0 (and a little above: x - lse can round up).
  double worst = 0;
  for (int i = 0; i <= 1000000; ++i) {
    const float x = static_cast<float>(-87.0 + 87.5 * i / 1000000.0);
    const double want = std::exp(static_cast<double>(x));
    worst = std::max(worst, std::abs(static_cast<double>(exp_nonpositive_fast(x)) - want) / want);
  }
  EXPECT_LT(worst, 3 * 0x1p-23) << "worst relative error " << worst;
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_nonpositive_fast(-inf), 0.0f);  // a masked score
  EXPECT_EQ(exp_nonpositive_fast(-90.0f), 0.0f);
  EXPECT_EQ(exp_nonpositive_fast(0.0f), 1.0f);
  EXPECT_TRUE(std::isnan(exp_nonpositive_fast(std::numeric_limits<float>::quiet_NaN())));
  EXPECT_EQ(exp_nonpositive_fast(-3.0), std::exp(-3.0));  // f64: libm
}

}  // namespace
