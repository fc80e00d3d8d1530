// DTypes: sizes, names, bf16 rounding and conversions between all dtypes through to().
#include <gtest/gtest.h>

#include <cmath>
#include <cstring>
#include <limits>
#include <random>

#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

namespace {

const DType kAll[] = {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64, DType::Bool};

uint32_t bits_of(float f) {
  uint32_t u;
  std::memcpy(&u, &f, 4);
  return u;
}
float float_of(uint32_t u) {
  float f;
  std::memcpy(&f, &u, 4);
  return f;
}
bool bf16_is_nan(uint16_t b) { return (b & 0x7f80u) == 0x7f80u && (b & 0x007fu) != 0; }

// Reference: picks, between the two bf16 values that bracket a finite f (truncation and the
// next one away from zero), the nearer one in exact double arithmetic; ties go to the even
// bit pattern. Written independently of BFloat16::from_float.
uint16_t reference_bf16(float f) {
  uint32_t u = bits_of(f);
  uint16_t lo = static_cast<uint16_t>(u >> 16);
  if ((u & 0xffffu) == 0) return lo;
  uint16_t hi = static_cast<uint16_t>(lo + 1);
  double x = f;
  double dlo = std::abs(x - static_cast<double>(BFloat16::to_float(lo)));
  // hi may be +-inf when lo is the largest finite bf16: measure against 2^128 instead.
  double vhi = ((hi & 0x7fffu) == 0x7f80u) ? std::copysign(std::ldexp(1.0, 128), x)
                                           : static_cast<double>(BFloat16::to_float(hi));
  double dhi = std::abs(x - vhi);
  if (dlo < dhi) return lo;
  if (dhi < dlo) return hi;
  return (lo & 1u) ? hi : lo;
}

}  // namespace

TEST(DType, SizesAndNames) {
  EXPECT_EQ(dtype_size(DType::F32), 4u);
  EXPECT_EQ(dtype_size(DType::F64), 8u);
  EXPECT_EQ(dtype_size(DType::BF16), 2u);
  EXPECT_EQ(dtype_size(DType::I32), 4u);
  EXPECT_EQ(dtype_size(DType::I64), 8u);
  EXPECT_EQ(dtype_size(DType::Bool), 1u);
  EXPECT_EQ(dtype_name(DType::F32), "f32");
  EXPECT_EQ(dtype_name(DType::F64), "f64");
  EXPECT_EQ(dtype_name(DType::BF16), "bf16");
  EXPECT_EQ(dtype_name(DType::I32), "i32");
  EXPECT_EQ(dtype_name(DType::I64), "i64");
  EXPECT_EQ(dtype_name(DType::Bool), "bool");
}

TEST(DType, FloatingAndIntegral) {
  EXPECT_TRUE(is_floating(DType::F32));
  EXPECT_TRUE(is_floating(DType::F64));
  EXPECT_TRUE(is_floating(DType::BF16));
  EXPECT_FALSE(is_floating(DType::I32));
  EXPECT_FALSE(is_floating(DType::I64));
  EXPECT_FALSE(is_floating(DType::Bool));
  for (DType t : kAll) EXPECT_NE(is_floating(t), is_integral(t)) << dtype_name(t);
}

TEST(DType, DtypeOfMapsCppTypes) {
  EXPECT_EQ(dtype_of<float>::value, DType::F32);
  EXPECT_EQ(dtype_of<double>::value, DType::F64);
  EXPECT_EQ(dtype_of<BFloat16>::value, DType::BF16);
  EXPECT_EQ(dtype_of<int32_t>::value, DType::I32);
  EXPECT_EQ(dtype_of<int64_t>::value, DType::I64);
  EXPECT_EQ(dtype_of<bool>::value, DType::Bool);
  EXPECT_EQ(sizeof(BFloat16), 2u);
}

TEST(DType, ElementSizeOfTensors) {
  for (DType t : kAll) {
    Tensor x = zeros({3, 5}, t);
    EXPECT_EQ(x.element_size(), dtype_size(t));
    EXPECT_EQ(x.storage().nbytes(), 15 * dtype_size(t)) << dtype_name(t);
  }
}

// ------------------------------------------------------------------------------ bf16

TEST(BFloat16, ExactValuesRoundTrip) {
  for (float f : {0.0f, 1.0f, -1.0f, 2.0f, 0.5f, -0.375f, 3.0f, 256.0f, 1.5f, -65536.0f}) {
    BFloat16 b(f);
    EXPECT_EQ(static_cast<float>(b), f);
  }
  EXPECT_EQ(BFloat16(1.0f).bits, 0x3f80);
  EXPECT_EQ(BFloat16(-2.0f).bits, 0xc000);
  EXPECT_EQ(BFloat16(0.0f).bits, 0x0000);
  EXPECT_EQ(BFloat16(-0.0f).bits, 0x8000);
  EXPECT_EQ(BFloat16::to_float(0x4040), 3.0f);
}

TEST(BFloat16, RoundsToNearest) {
  // 1 + 2^-8 + 2^-9 is above the midpoint between 1 and 1 + 2^-7: rounds up.
  EXPECT_EQ(BFloat16::from_float(float_of(0x3f80c000u)), 0x3f81);
  // Just below the midpoint: rounds down; just above: up.
  EXPECT_EQ(BFloat16::from_float(float_of(0x3f807fffu)), 0x3f80);
  EXPECT_EQ(BFloat16::from_float(float_of(0x3f808001u)), 0x3f81);
  // Negative numbers round by magnitude.
  EXPECT_EQ(BFloat16::from_float(float_of(0xbf808001u)), 0xbf81);
  EXPECT_EQ(BFloat16::from_float(float_of(0xbf807fffu)), 0xbf80);
  // pi = 0x40490fdb -> 0x4049 (0x0fdb is below the half 0x8000)
  EXPECT_EQ(BFloat16(3.14159265f).bits, 0x4049);
  // Rounding up can carry into the exponent: 1.99999988 -> 2.
  EXPECT_EQ(BFloat16::from_float(float_of(0x3fffffffu)), 0x4000);
}

TEST(BFloat16, TiesGoToEven) {
  // Exactly halfway between 0x3f80 (even) and 0x3f81: stays at the even one.
  EXPECT_EQ(BFloat16::from_float(float_of(0x3f808000u)), 0x3f80);
  // Halfway between 0x3f81 (odd) and 0x3f82 (even): goes up to the even one.
  EXPECT_EQ(BFloat16::from_float(float_of(0x3f818000u)), 0x3f82);
  EXPECT_EQ(BFloat16::from_float(float_of(0xbf818000u)), 0xbf82);
  EXPECT_EQ(BFloat16::from_float(float_of(0xbf808000u)), 0xbf80);
  // Integers: 257 is a tie between 256 and 258 -> 256; 259 between 258 and 260 -> 260.
  EXPECT_EQ(static_cast<float>(BFloat16(257.0f)), 256.0f);
  EXPECT_EQ(static_cast<float>(BFloat16(259.0f)), 260.0f);
}

TEST(BFloat16, InfinityAndOverflow) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(BFloat16(inf).bits, 0x7f80);
  EXPECT_EQ(BFloat16(-inf).bits, 0xff80);
  EXPECT_EQ(static_cast<float>(BFloat16(inf)), inf);
  // The largest finite bf16 stays finite.
  EXPECT_EQ(BFloat16::from_float(BFloat16::to_float(0x7f7f)), 0x7f7f);
  // FLT_MAX is above the midpoint between the largest bf16 and 2^128: rounds to infinity.
  EXPECT_EQ(BFloat16(std::numeric_limits<float>::max()).bits, 0x7f80);
  EXPECT_EQ(BFloat16(-std::numeric_limits<float>::max()).bits, 0xff80);
}

TEST(BFloat16, NaNStaysNaN) {
  const float qnan = std::numeric_limits<float>::quiet_NaN();
  EXPECT_TRUE(bf16_is_nan(BFloat16(qnan).bits));
  EXPECT_TRUE(std::isnan(static_cast<float>(BFloat16(qnan))));
  // NaNs whose payload is only in the low 16 bits would truncate/round to infinity or to
  // another exponent: they must stay NaN.
  for (uint32_t u : {0x7f800001u, 0x7f80ffffu, 0x7fffffffu, 0xff800001u, 0xffffffffu, 0x7fbfffffu}) {
    uint16_t b = BFloat16::from_float(float_of(u));
    EXPECT_TRUE(bf16_is_nan(b)) << std::hex << u << " -> " << b;
    EXPECT_EQ(b & 0x8000u, (u >> 16) & 0x8000u) << "sign of NaN kept for " << std::hex << u;
  }
}

TEST(BFloat16, Subnormals) {
  // f32 subnormals far below half the smallest bf16 subnormal (2^-133) round to (signed) zero.
  EXPECT_EQ(BFloat16::from_float(float_of(0x00000001u)), 0x0000);
  EXPECT_EQ(BFloat16::from_float(float_of(0x80000001u)), 0x8000);
  // Exactly half of the smallest bf16 subnormal: tie -> even (zero).
  EXPECT_EQ(BFloat16::from_float(float_of(0x00008000u)), 0x0000);
  EXPECT_EQ(BFloat16::from_float(float_of(0x00008001u)), 0x0001);
  // 1.5 x smallest: tie between 1 and 2 -> 2.
  EXPECT_EQ(BFloat16::from_float(float_of(0x00018000u)), 0x0002);
  // bf16 subnormals are exact in f32 and come back unchanged.
  EXPECT_EQ(BFloat16::to_float(0x0001), std::ldexp(1.0f, -133));
  EXPECT_EQ(BFloat16::from_float(std::ldexp(1.0f, -133)), 0x0001);
  EXPECT_EQ(BFloat16::from_float(std::ldexp(-3.0f, -133)), 0x8003);
  // The largest subnormal rounds up into the smallest normal.
  EXPECT_EQ(BFloat16::from_float(float_of(0x007fffffu)), 0x0080);
}

TEST(BFloat16, EveryBitPatternRoundTrips) {
  for (uint32_t b = 0; b <= 0xffffu; ++b) {
    uint16_t bits = static_cast<uint16_t>(b);
    float f = BFloat16::to_float(bits);
    uint16_t back = BFloat16::from_float(f);
    if (bf16_is_nan(bits)) {
      EXPECT_TRUE(bf16_is_nan(back)) << std::hex << b;
    } else {
      ASSERT_EQ(back, bits) << std::hex << b;
    }
  }
}

TEST(BFloat16, MatchesReferenceRoundingOnRandomFloats) {
  std::mt19937 rng(42);
  int checked = 0;
  for (int i = 0; i < 200000; ++i) {
    uint32_t u = rng();
    float f = float_of(u);
    if (!std::isfinite(f)) continue;
    ASSERT_EQ(BFloat16::from_float(f), reference_bf16(f)) << std::hex << u;
    ++checked;
  }
  EXPECT_GT(checked, 190000);
  // Also the tie cases, where the low half is exactly 0x8000.
  for (int i = 0; i < 20000; ++i) {
    uint32_t u = (rng() & 0xffff0000u) | 0x8000u;
    float f = float_of(u);
    if (!std::isfinite(f)) continue;
    ASSERT_EQ(BFloat16::from_float(f), reference_bf16(f)) << std::hex << u;
  }
}

// ---------------------------------------------------------------------- conversions

TEST(Conversion, SameDtypeReturnsSameTensor) {
  for (DType t : kAll) {
    Tensor x = zeros({2}, t);
    EXPECT_TRUE(x.to(t).is_same(x)) << dtype_name(t);
  }
}

TEST(Conversion, AllPairsOnSmallIntegers) {
  // 0..5 are exact in every non-bool dtype.
  for (DType src : kAll) {
    for (DType dst : kAll) {
      SCOPED_TRACE(std::string(dtype_name(src)) + " -> " + std::string(dtype_name(dst)));
      if (src == DType::Bool || dst == DType::Bool) {
        Tensor x = i64({0, 1, 1, 0}, {2, 2}).to(DType::Bool).to(src);
        Tensor y = x.to(dst);
        EXPECT_EQ(y.dtype(), dst);
        EXPECT_EQ(y.shape(), (Shape{2, 2}));
        EXPECT_EQ(ivec(y), (std::vector<int64_t>{0, 1, 1, 0}));
      } else {
        Tensor x = i64({0, 1, 2, 3, 4, 5}, {2, 3}).to(src);
        Tensor y = x.to(dst);
        EXPECT_EQ(y.dtype(), dst);
        EXPECT_EQ(y.shape(), (Shape{2, 3}));
        EXPECT_EQ(ivec(y), (std::vector<int64_t>{0, 1, 2, 3, 4, 5}));
        EXPECT_EQ(y.shares_storage(x), src == dst);
      }
    }
  }
}

TEST(Conversion, NegativeValuesAcrossSignedDtypes) {
  const DType signed_types[] = {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64};
  for (DType src : signed_types)
    for (DType dst : signed_types) {
      Tensor y = i64({-7, -1, 0, 3}, {4}).to(src).to(dst);
      EXPECT_EQ(ivec(y), (std::vector<int64_t>{-7, -1, 0, 3}))
          << dtype_name(src) << " -> " << dtype_name(dst);
    }
}

TEST(Conversion, FloatToIntegerTruncatesTowardZero) {
  Tensor x = f32({1.5f, -2.7f, 0.0f, 3.99f, -0.5f, 100.25f, -100.75f}, {7});
  const std::vector<int64_t> want{1, -2, 0, 3, 0, 100, -100};
  Tensor a = x.to(DType::I32);
  EXPECT_EQ(a.dtype(), DType::I32);
  const int32_t* p = a.data_ptr<int32_t>();
  for (size_t i = 0; i < want.size(); ++i) EXPECT_EQ(p[i], want[i]) << i;
  Tensor b = x.to(DType::I64);
  EXPECT_EQ(std::vector<int64_t>(b.data_ptr<int64_t>(), b.data_ptr<int64_t>() + 7), want);
  Tensor c = f64({2.9999, -2.9999, 1e12}, {3}).to(DType::I64);
  EXPECT_EQ(ivec(c), (std::vector<int64_t>{2, -2, 1000000000000}));
  Tensor d = x.to(DType::BF16).to(DType::I32);  // bf16 1.5 -> 1, -2.7 -> ~-2.70 -> -2
  EXPECT_EQ(d.data_ptr<int32_t>()[0], 1);
  EXPECT_EQ(d.data_ptr<int32_t>()[1], -2);
}

TEST(Conversion, ToBoolIsNonZero) {
  Tensor x = f32({0.0f, -0.0f, 0.25f, -3.0f, 1e-30f, std::numeric_limits<float>::infinity()}, {6});
  Tensor b = x.to(DType::Bool);
  ASSERT_EQ(b.dtype(), DType::Bool);
  const bool* p = b.data_ptr<bool>();
  EXPECT_FALSE(p[0]);
  EXPECT_FALSE(p[1]);
  EXPECT_TRUE(p[2]);
  EXPECT_TRUE(p[3]);
  EXPECT_TRUE(p[4]);
  EXPECT_TRUE(p[5]);
  Tensor fromint = i64({0, 7, -1}, {3}).to(DType::Bool);
  EXPECT_EQ(ivec(fromint), (std::vector<int64_t>{0, 1, 1}));
  Tensor back = fromint.to(DType::F32);
  EXPECT_EQ(fvec(back), (std::vector<float>{0.0f, 1.0f, 1.0f}));
}

TEST(Conversion, FloatToBf16RoundsToNearestEven) {
  std::vector<float> v{1.0f, float_of(0x3f808000u), float_of(0x3f818000u), 3.14159265f, 257.0f, -259.0f};
  Tensor b = f32(v, {6}).to(DType::BF16);
  ASSERT_EQ(b.dtype(), DType::BF16);
  const BFloat16* p = b.data_ptr<BFloat16>();
  for (size_t i = 0; i < v.size(); ++i) EXPECT_EQ(p[i].bits, BFloat16(v[i]).bits) << i;
  EXPECT_EQ(p[1].bits, 0x3f80);
  EXPECT_EQ(p[2].bits, 0x3f82);
  EXPECT_EQ(fvec(b), (std::vector<float>{1.0f, 1.0f, float_of(0x3f820000u), BFloat16::to_float(0x4049),
                                         256.0f, -260.0f}));
  // Integers go through the same rounding.
  Tensor ib = i64({257, 259, 1 << 20}, {3}).to(DType::BF16);
  EXPECT_EQ(ivec(ib), (std::vector<int64_t>{256, 260, 1 << 20}));
}

TEST(Conversion, NanAndInfThroughBf16AndF64) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor x = f32({std::nanf(""), inf, -inf}, {3});
  auto v = dvec(x.to(DType::BF16));
  EXPECT_TRUE(std::isnan(v[0]));
  EXPECT_EQ(v[1], std::numeric_limits<double>::infinity());
  EXPECT_EQ(v[2], -std::numeric_limits<double>::infinity());
  auto w = dvec(x.to(DType::F64));
  EXPECT_TRUE(std::isnan(w[0]));
  EXPECT_TRUE(std::isinf(w[1]));
}

TEST(Conversion, F64ToF32Rounds) {
  Tensor x = f64({0.1, 1.0 / 3.0, 1e300}, {3}).to(DType::F32);
  const float* p = x.data_ptr<float>();
  EXPECT_EQ(p[0], 0.1f);
  EXPECT_EQ(p[1], static_cast<float>(1.0 / 3.0));
  EXPECT_TRUE(std::isinf(p[2]));
  Tensor back = x.to(DType::F64);
  EXPECT_EQ(back.data_ptr<double>()[0], static_cast<double>(0.1f));
}

TEST(Conversion, LargeI64ToF64AndI32) {
  Tensor x = i64({(int64_t{1} << 40) + 3, -(int64_t{1} << 33)}, {2});
  EXPECT_EQ(dvec(x), (std::vector<double>{1099511627779.0, -8589934592.0}));
  // i64 -> f32 rounds to 24 significant bits.
  EXPECT_EQ(fvec(i64({16777217}, {1})), (std::vector<float>{16777216.0f}));
}

TEST(Conversion, NonContiguousSourceIsConvertedInLogicalOrder) {
  Tensor x = arange(0, 6).reshape({2, 3}).t();  // [[0,3],[1,4],[2,5]]
  ASSERT_FALSE(x.is_contiguous());
  for (DType t : {DType::F64, DType::BF16, DType::I32, DType::I64}) {
    Tensor y = x.to(t);
    EXPECT_EQ(y.shape(), (Shape{3, 2}));
    EXPECT_TRUE(y.is_contiguous()) << dtype_name(t);
    EXPECT_EQ(ivec(y), (std::vector<int64_t>{0, 3, 1, 4, 2, 5})) << dtype_name(t);
  }
}

TEST(Conversion, FromDataForEveryDtype) {
  EXPECT_EQ(from_data<float>({1.5f}, {1}).dtype(), DType::F32);
  EXPECT_EQ(from_data<double>({1.5}, {1}).dtype(), DType::F64);
  EXPECT_EQ(from_data<int32_t>({-4, 5}, {2}).dtype(), DType::I32);
  EXPECT_EQ(from_data<int64_t>({1}, {1}).dtype(), DType::I64);
  Tensor b = from_data<BFloat16>({BFloat16(1.5f), BFloat16(-2.0f)}, {2});
  EXPECT_EQ(b.dtype(), DType::BF16);
  EXPECT_EQ(fvec(b), (std::vector<float>{1.5f, -2.0f}));
  EXPECT_EQ(ivec(from_data<int32_t>({-4, 5}, {2})), (std::vector<int64_t>{-4, 5}));
}
