// Transcendental functions for f32 written so the compiler vectorises the loops that call
// them: no branches (selects instead), no libm calls. glibc's scalar expf was the whole cost
// of softmax, sigmoid and quick_gelu. f64 keeps libm.
#pragma once
#include <bit>
#include <cmath>
#include <cstdint>
#include <limits>

namespace mmgrad::cpu {

// e^x with at most 3 ulp error for normal results; denormal results keep their absolute
// accuracy; 0 below -104, inf above 88.72, NaN stays NaN.
inline float exp_f32(float x) {
  // e^x = 2^n e^r with n = round(x log2 e) and |r| <= ln2 / 2.
  float xc = x < -104.0f ? -104.0f : x;
  xc = xc > 88.72f ? 88.72f : xc;
  constexpr float kRound = 12582912.0f;  // 1.5 * 2^23: adding it rounds to an integer
  const float t = xc * 1.44269504088896341f + kRound;
  const float n = t - kRound;
  // ln 2 split in two so that n * kLn2Hi is exact (kLn2Hi has 9 significant bits, |n| <= 150).
  constexpr float kLn2Hi = 0.693359375f, kLn2Lo = -2.12194440054690583e-4f;
  const float r = (xc - n * kLn2Hi) - n * kLn2Lo;
  // Taylor series to degree 7: the truncation error r^8 / 8! is below 6e-9.
  float p = 1.0f / 5040;
  p = p * r + 1.0f / 720;
  p = p * r + 1.0f / 120;
  p = p * r + 1.0f / 24;
  p = p * r + 1.0f / 6;
  p = p * r + 0.5f;
  p = p * r + 1.0f;
  p = p * r + 1.0f;
  // 2^n applied as two factors 2^(n/2) and 2^(n - n/2): each is a normal float for every
  // n in [-150, 128], so neither the overflow nor the denormal end needs a special case.
  const int32_t n_int = std::bit_cast<int32_t>(t) - std::bit_cast<int32_t>(kRound);
  const int32_t n_lo = n_int >> 1, n_hi = n_int - n_lo;
  float y = p * std::bit_cast<float>((n_lo + 127) << 23) * std::bit_cast<float>((n_hi + 127) << 23);
  y = x < -104.0f ? 0.0f : y;
  y = x > 88.72f ? std::numeric_limits<float>::infinity() : y;
  return x != x ? x : y;
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

}  // namespace mmgrad::cpu
