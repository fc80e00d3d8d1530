// Transcendental functions for f32 written so the compiler vectorises the loops that call
// them: no branches (selects instead), no libm calls. glibc's scalar expf was the whole cost
// of softmax, sigmoid and quick_gelu. f64 keeps libm.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

#include "core/multiversion.h"

// Hot loops are multiversioned (core/multiversion.h): the inline math below is compiled into
// each clone, so it runs in the widest vectors of the CPU at hand.

namespace mmgrad::cpu {

// Shared by the exps below: e^x = 2^n e^r with n = round(x log2 e) and |r| <= ln2 / 2; t holds
// n in its low mantissa bits (x log2 e + 1.5 * 2^23), r is x - n ln2 and the result is e^r.
constexpr float kExpRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
// ln 2 split in two so that n * kLn2Hi is exact for an exponent n (kLn2Hi has 9 significant
// bits, |n| <= 150): the exps' range reduction and the log's reassembly.
constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440054690583e-4f;
inline float exp_reduced_f32(float x, float* t_out) {
  const float t = x * 1.44269504088896341f + kExpRound;
  const float n = t - kExpRound;
  const float r = (x - n * kLn2Hi) - n * kLn2Lo;
  // Taylor series to degree 7: the truncation error r^8 / 8! is below 6e-9.
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  *t_out = t;
  return p;
}
inline int32_t exp_reduced_n(float t) { return std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kExpRound); }

// e^x with at most 3 ulp error for normal results; denormal results keep their absolute
// accuracy; 0 below -104, inf above 88.72, NaN stays NaN.
inline float exp_f32(float x) {
  float xc = x < -104.0f ? -104.0f : x;
  xc = xc > 88.72f ? 88.72f : xc;
  float t;
  const float p = exp_reduced_f32(xc, &t);
  // 2^n applied as two factors 2^(n/2) and 2^(n - n/2): each is a normal float for every
  // n in [-150, 128], so neither the overflow nor the denormal end needs a special case.
  const int32_t n_int = exp_reduced_n(t);
  const int32_t n_lo = n_int >> 1, n_hi = n_int - n_lo;
  float y = p * std::bit_cast<float>((n_lo + 127) << 23) * std::bit_cast<float>((n_hi + 127) << 23);
  y = x < -104.0f ? 0.0f : y;
  y = x > 88.72f ? std::numeric_limits<float>::infinity() : y;
  return x != x ? x : y;
}

// e^x for -87 <= x <= 0 only (so 2^n is one normal float and nothing overflows): exp_f32
// without its clamps, its special-value selects and its second scale factor, for erfc's
// exp(-z^2) with z <= 9.2, where they were a tenth of gelu's arithmetic.
inline float exp_nonpositive_f32(float x) {
  float t;
  const float p = exp_reduced_f32(x, &t);
  return p * std::bit_cast<float>((exp_reduced_n(t) + 127) << 23);
}

// erf(x) / x as a polynomial in w = x^2, |x| <= 1: P of degree 7 fitted (relative least
// squares) with numpy (float64) for mmgrad by tools/fit_erfc.py. erf_f32 uses it near 0, where erf(x) ~ x needs
// relative accuracy that 1 - erfc(x) cannot give.
inline float erf_over_x_f32(float w) {  // erf(x) / x as a polynomial in w = x^2, |x| <= 1
  float p = -9.6417129524656309e-06f;
  p = p * w + 1.1257022178498555e-04f;
  p = p * w - 8.4828400616633604e-04f;
  p = p * w + 5.2209462962773401e-03f;
  p = p * w - 2.6865400398508987e-02f;
  p = p * w + 1.1283781981663979e-01f;
  p = p * w - 3.7612638435358364e-01f;
  p = p * w + 1.1283791670582157e+00f;
  return p;
}

// exp(-z^2) for 0 <= z <= 9.2 without z^2's rounding error (up to 5e-6 relative at z = 9,
// which would reach erfc's result): exp(-zh^2) exp((zh - z)(zh + z)) with zh = z cut to 12
// significant bits, so zh^2 is exact. The second factor's argument d is tiny (|d| < z^2 /
// 1024 <= 0.083), so a degree-4 Taylor polynomial gives it to 4e-8 where a second exp cost
// three times as much (this is most of gelu's cost).
inline float exp_neg_square_f32(float z) {
  const float zh = std::bit_cast<float>(std::bit_cast<int32_t>(z) & int32_t(0xfffff000));
  const float d = (zh - z) * (zh + z);
  float p = 1.0f / 24;
  p = p * d + 1.0f / 6;
  p = p * d + 0.5f;
  p = p * d + 1.0f;
  p = p * d + 1.0f;
  return exp_nonpositive_f32(-zh * zh) * p;
}

// erfc(z) for z >= 0 given e = exp(-z^2) for min(z, 9.2) (gelu's derivative shares it):
// e Q(t) with t = 2 / (2 + z), one piece for the whole range (0 from z = 9.2 on, where erfc
// is below 1e-37). Q of degree 9 was fitted for mmgrad to erfc(z) exp(z^2) on [0, 9.2] by
// tools/fit_erfc.py (numpy: relative least squares on Chebyshev nodes in t, re-weighted
// towards minimax): 3.1e-7 relative evaluated in float. It replaced a
// two-piece form (a degree-7 polynomial below z = 1, degree 12 in 1 / (1 + z) above) that
// computed both pieces for every element: a quarter of gelu's arithmetic.
inline float erfc_nonneg_from_exp_f32(float z, float e) {
  const float t = 2.0f / (2.0f + z);
  float q = -5.3494347150967035e-02f;
  q = q * t + 2.5573948241774402e-01f;
  q = q * t - 4.2302512739964310e-01f;
  q = q * t + 1.9765504662972364e-01f;
  q = q * t + 3.5693919454763412e-02f;
  q = q * t + 1.7180699053509557e-01f;
  q = q * t + 2.5285679541096534e-01f;
  q = q * t + 2.8048706355008257e-01f;
  q = q * t + 2.8228936511151032e-01f;
  q = q * t - 9.2177008458900540e-06f;
  const float y = z >= 9.2f ? 0.0f : e * q;
  return z != z ? z : y;
}

inline float erfc_nonneg_f32(float z) {
  const float zc = z < 9.2f ? z : 9.2f;  // keeps the products finite for huge z
  return erfc_nonneg_from_exp_f32(z, exp_neg_square_f32(zc));
}

// erf(x): x P(x^2) near 0 (relative accuracy for tiny x), 1 - erfc(|x|) with x's sign beyond.
inline float erf_f32(float x) {
  const float z = std::abs(x);
  const float tail = 1.0f - erfc_nonneg_f32(z);
  const float y = z < 1.0f ? x * erf_over_x_f32(x * x) : (x < 0.0f ? -tail : tail);
  return x != x ? x : y;
}

// The standard normal CDF Phi(x) = erfc(-x / sqrt 2) / 2, accurate in relative terms on the
// negative side too (no 1 + erf cancellation): gelu(x) = x Phi(x).
inline float normal_cdf_f32(float x) {
  const float half_tail = 0.5f * erfc_nonneg_f32(std::abs(x) * 0.70710678118654752f);
  return x < 0.0f ? half_tail : 1.0f - half_tail;
}

// gelu(x) = x Phi(x) and gelu'(x) = Phi(x) + x phi(x) together. phi(x) = exp(-x^2 / 2) /
// sqrt(2 pi) is the exp(-z^2), z = |x| / sqrt 2, that Phi's erfc needs too: one exp serves
// both (gelu's backward used to take three). phi is taken as 0 from |x| = 13 on (it is
// below 1e-37 there). The same formulas as x * normal_cdf_f32(x).
inline void gelu_and_derivative_f32(float x, float* value, float* derivative) {
  const float z = std::abs(x) * 0.70710678118654752f;
  const float zc = z < 9.2f ? z : 9.2f;
  const float e = exp_neg_square_f32(zc);
  const float half_tail = 0.5f * erfc_nonneg_from_exp_f32(z, e);
  const float cdf = x < 0.0f ? half_tail : 1.0f - half_tail;
  const float pdf = z < 9.2f ? 0.39894228040143267794f * e : 0.0f;
  *value = x * cdf;
  *derivative = cdf + x * pdf;
}

inline float gelu_derivative_f32(float x) {
  float value, derivative;
  gelu_and_derivative_f32(x, &value, &derivative);
  return derivative;
}

template <typename T>
inline T erf_fast(T x) {
  if constexpr (std::is_same_v<T, float>) return erf_f32(x);
  else return std::erf(x);
}

template <typename T>
inline T normal_cdf_fast(T x) {
  if constexpr (std::is_same_v<T, float>) return normal_cdf_f32(x);
  else return T(0.5) * std::erfc(-x * T(0.70710678118654752440));
}

// e^x for x <= 88 where overflow cannot happen (a softmax's x - max, x - logsumexp): 0 below
// -87 (probabilities under 1.6e-38 are flushed), NaN stays NaN; f64 keeps libm.
template <typename T>
inline T exp_nonpositive_fast(T x) {
  if constexpr (std::is_same_v<T, float>) {
    const float y = exp_nonpositive_f32(x < -87.0f ? -87.0f : x);
    return x < -87.0f ? 0.0f : y;
  } else {
    return std::exp(x);
  }
}

// ln x for a positive normal x (a softmax's sum of exps, which is at least 1), +inf and NaN
// passed through; 0, negatives and denormals are not handled. x = m 2^e with m in
// [sqrt(1/2), sqrt(2)), and ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| <= 0.172: the odd
// series to s^9 leaves 2 s^11 / 11 < 1e-9. Branch-free, so a loop over rows vectorises where
// glibc's logf is a call per row (forward attention took one per query row).
inline float log_positive_f32(float x) {
  const int32_t bits = std::bit_cast<int32_t>(x);
  // The exponent counted from sqrt(1/2) (bits 0x3f3504f3), not from 1: m lands in
  // [sqrt(1/2), sqrt(2)) where the series converges fastest.
  const int32_t e = (bits - 0x3f3504f3) >> 23;
  const float m = std::bit_cast<float>(bits - (e << 23));
  const float s = (m - 1.0f) / (m + 1.0f), s2 = s * s;
  float p = 1.0f / 9;
  p = p * s2 + 1.0f / 7;
  p = p * s2 + 1.0f / 5;
  p = p * s2 + 1.0f / 3;
  const float ln_m = 2.0f * s + 2.0f * s * s2 * p;
  const float ef = static_cast<float>(e);
  const float y = ef * kLn2Hi + (ln_m + ef * kLn2Lo);
  return x != x || x == std::numeric_limits<float>::infinity() ? x : y;
}

// The natural log of a positive normal x for element type T (f64 keeps libm).
template <typename T>
inline T log_positive_fast(T x) {
  if constexpr (std::is_same_v<T, float>) return log_positive_f32(x);
  else return std::log(x);
}

// The exp a kernel should use for element type T.
template <typename T>
inline T exp_fast(T x) {
  if constexpr (std::is_same_v<T, float>) return exp_f32(x);
  else return std::exp(x);
}

// 1 / (1 + e^-x): exp overflows to inf for very negative x, giving the right limit 0.
template <typename T>
inline T sigmoid_fast(T x) {
  if constexpr (std::is_same_v<T, float>) {
    return 1.0f / (1.0f + exp_f32(-x));
  } else {
    // Split by sign so exp never overflows.
    if (x >= T(0)) return T(1) / (T(1) + std::exp(-x));
    T e = std::exp(x);
    return e / (T(1) + e);
  }
}

// quick_gelu(x) = x sigmoid(1.702 x) and its derivative s + 1.702 x s (1 - s), sharing the
// one sigmoid: the forward op, the backward op and the fused MLP pass all use this.
template <typename T>
struct QuickGelu {
  T value, derivative;
};
template <typename T>
inline QuickGelu<T> quick_gelu_and_derivative(T x) {
  const T s = sigmoid_fast(T(1.702) * x);
  return {x * s, s + T(1.702) * x * s * (T(1) - s)};
}

// A dense sum with eight independent accumulators: a single running sum is bound by the
// latency of one add per element; eight chains keep the FP units busy and vectorise.
template <typename Acc, typename T>
inline Acc sum_lanes(const T* p, int64_t n) {
  Acc lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += static_cast<Acc>(p[i + k]);
  Acc total = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) total += static_cast<Acc>(p[i]);
  return total;
}

// sum over i < n of f(i), in the same eight lanes (for sums of products and squares).
template <typename Acc, typename F>
inline Acc sum_lanes_of(int64_t n, F f) {
  Acc lane[8] = {};
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] += f(i + k);
  Acc total = ((lane[0] + lane[1]) + (lane[2] + lane[3])) + ((lane[4] + lane[5]) + (lane[6] + lane[7]));
  for (; i < n; ++i) total += f(i);
  return total;
}

// The largest element (ignoring NaN, like a running std::max), over eight lanes for the
// same reason as sum_lanes.
template <typename T>
inline T max_lanes(const T* p, int64_t n) {
  T lane[8];
  for (int k = 0; k < 8; ++k) lane[k] = -std::numeric_limits<T>::infinity();
  int64_t i = 0;
  for (; i + 8 <= n; i += 8)
    for (int k = 0; k < 8; ++k) lane[k] = lane[k] < p[i + k] ? p[i + k] : lane[k];
  T m = lane[0];
  for (int k = 1; k < 8; ++k) m = m < lane[k] ? lane[k] : m;
  for (; i < n; ++i) m = m < p[i] ? p[i] : m;
  return m;
}

}  // namespace mmgrad::cpu
