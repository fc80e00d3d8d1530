// Reductions over rows that are a whole number of 64-byte vectors, written with GCC vector
// extensions so that each compiles to one AVX-512 register, two AVX2 or four SSE registers:
// whichever the multiversioned loop (MMGRAD_MULTIVERSION) that inlines them was compiled for.
// Partial vectors are folded in halves at the end. Used where a kernel pads its rows to whole
// vectors (attention's score rows) or where the width already is one (LayerNorm over 96, 128
// or 768 features): the 8-lane scalar-style sums of vec_math.h left short rows to remainder
// loops and a serial tree.
#pragma once
#include <cstdint>
#include <cstring>
#include <limits>

namespace mmgrad::cpu {

constexpr int kVecBytes = 64;

// Elements of T in one 64-byte vector, and whether n of them fill whole vectors.
template <typename T>
constexpr int64_t vec_lanes() {
  return kVecBytes / static_cast<int64_t>(sizeof(T));
}
template <typename T>
constexpr bool whole_vectors(int64_t n) {
  return n > 0 && n % vec_lanes<T>() == 0;
}

// The helpers are always inlined into the multiversioned loops, so their vector arguments
// never cross a call (GCC's -Wpsabi notes about passing wide vectors by value are off
// project-wide for this reason: meson.build). n must be a whole number of vectors
// (whole_vectors).
#define MMGRAD_VEC_INLINE inline __attribute__((always_inline))
template <typename T, int Bytes>
struct VecType {
  typedef T type __attribute__((vector_size(Bytes)));
};
template <typename T, int Bytes>
using Vec = typename VecType<T, Bytes>::type;

template <typename T, int Bytes>
MMGRAD_VEC_INLINE Vec<T, Bytes> load_vec(const T* p) {
  Vec<T, Bytes> v;
  std::memcpy(&v, p, Bytes);
  return v;
}

template <typename T, int Bytes>
MMGRAD_VEC_INLINE void store_vec(T* p, Vec<T, Bytes> v) {
  std::memcpy(p, &v, Bytes);
}

// Folds a vector into one element, combining its halves until one lane is left.
template <typename T, int Bytes, typename Combine>
MMGRAD_VEC_INLINE T fold(Vec<T, Bytes> v, Combine combine) {
  if constexpr (Bytes == sizeof(T)) {
    return v[0];
  } else {
    Vec<T, Bytes / 2> lo, hi;
    std::memcpy(&lo, &v, Bytes / 2);
    std::memcpy(&hi, reinterpret_cast<const char*>(&v) + Bytes / 2, Bytes / 2);
    return fold<T, Bytes / 2>(combine(lo, hi), combine);
  }
}

struct AddLanes {
  template <typename V>
  MMGRAD_VEC_INLINE V operator()(V a, V b) const {
    return a + b;
  }
};
struct MaxLanes {  // NaN in a loses to b, as in a running std::max
  template <typename V>
  MMGRAD_VEC_INLINE V operator()(V a, V b) const {
    return a < b ? b : a;
  }
};

template <typename T, int Bytes>
MMGRAD_VEC_INLINE T fold_sum(Vec<T, Bytes> v) {
  return fold<T, Bytes>(v, AddLanes{});
}

// The largest of p[0..n), ignoring NaN like a running std::max.
template <typename T>
MMGRAD_VEC_INLINE T row_max(const T* p, int64_t n) {
  constexpr int64_t step = kVecBytes / sizeof(T);
  Vec<T, kVecBytes> m = {};
  m -= std::numeric_limits<T>::infinity();
  for (int64_t j = 0; j < n; j += step) {
    const auto v = load_vec<T, kVecBytes>(p + j);
    m = MaxLanes{}(m, v);
  }
  return fold<T, kVecBytes>(m, MaxLanes{});
}

// sum over j < n of a[j] * b[j] (b null: of a[j]).
template <typename T>
MMGRAD_VEC_INLINE T row_dot(const T* a, const T* b, int64_t n) {
  constexpr int64_t step = kVecBytes / sizeof(T);
  Vec<T, kVecBytes> acc = {};
  for (int64_t j = 0; j < n; j += step) {
    const auto v = load_vec<T, kVecBytes>(a + j);
    acc += b ? v * load_vec<T, kVecBytes>(b + j) : v;
  }
  return fold_sum<T, kVecBytes>(acc);
}

}  // namespace mmgrad::cpu
