// Element types a tensor can hold, their sizes and names, and bf16 <-> f32 conversion.
#pragma once
#include <cstdint>
#include <cstring>
#include <string_view>

namespace mmgrad {

enum class DType : uint8_t { F32, F64, BF16, I32, I64, Bool };

// bfloat16: the upper 16 bits of an IEEE f32. Stored as raw bits; arithmetic happens in f32.
struct BFloat16 {
  uint16_t bits = 0;
  BFloat16() = default;
  explicit BFloat16(float f) : bits(from_float(f)) {}
  explicit operator float() const { return to_float(bits); }

  static float to_float(uint16_t b) {
    uint32_t u = static_cast<uint32_t>(b) << 16;
    float f;
    std::memcpy(&f, &u, 4);
    return f;
  }
  // Round to nearest, ties to even; NaN stays NaN (quiet) instead of rounding to infinity.
  static uint16_t from_float(float f) {
    uint32_t u;
    std::memcpy(&u, &f, 4);
    if ((u & 0x7fffffffu) > 0x7f800000u) return static_cast<uint16_t>((u >> 16) | 0x40u);
    uint32_t rounding_bias = 0x7fffu + ((u >> 16) & 1u);
    return static_cast<uint16_t>((u + rounding_bias) >> 16);
  }
};

size_t dtype_size(DType t);
std::string_view dtype_name(DType t);
bool is_floating(DType t);  // f32, f64, bf16
bool is_integral(DType t);  // i32, i64, bool

// Maps a C++ type to its DType, for typed data access (data_ptr<T>) and from_data.
template <typename T> struct dtype_of;
template <> struct dtype_of<float> { static constexpr DType value = DType::F32; };
template <> struct dtype_of<double> { static constexpr DType value = DType::F64; };
template <> struct dtype_of<BFloat16> { static constexpr DType value = DType::BF16; };
template <> struct dtype_of<int32_t> { static constexpr DType value = DType::I32; };
template <> struct dtype_of<int64_t> { static constexpr DType value = DType::I64; };
template <> struct dtype_of<bool> { static constexpr DType value = DType::Bool; };

}  // namespace mmgrad
