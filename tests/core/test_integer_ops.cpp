// Integer arithmetic and float-to-integer conversions: defined results, never UB or traps.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

TEST(IntegerOps, MinDividedByMinusOneWrapsInsteadOfTrapping) {
  const int32_t lo = std::numeric_limits<int32_t>::min();
  Tensor q = div(from_data<int32_t>({lo, 7, -7}, {3}), from_data<int32_t>({-1, -1, 2}, {3}));
  EXPECT_EQ(to_vector<int32_t>(q), (std::vector<int32_t>{lo, -7, -3}));
  const int64_t lo64 = std::numeric_limits<int64_t>::min();
  Tensor q64 = div(from_data<int64_t>({lo64}, {1}), from_data<int64_t>({-1}, {1}));
  EXPECT_EQ(to_vector<int64_t>(q64), (std::vector<int64_t>{lo64}));
  EXPECT_MMGRAD_ERROR(div(from_data<int32_t>({1}, {1}), from_data<int32_t>({0}, {1})), "div", "division by zero");
}

TEST(IntegerOps, FloatToIntegerConversionSaturatesAndMapsNanToZero) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor f = from_data<float>({1e20f, -1e20f, std::nanf(""), 2.9f, -2.9f, inf}, {6});
  EXPECT_EQ(to_vector<int32_t>(f.to(DType::I32)),
            (std::vector<int32_t>{std::numeric_limits<int32_t>::max(), std::numeric_limits<int32_t>::min(), 0,
                                  2, -2, std::numeric_limits<int32_t>::max()}));
  EXPECT_EQ(to_vector<int64_t>(f.to(DType::I64))[0], std::numeric_limits<int64_t>::max());
}

TEST(IntegerOps, FillValuesMustFitTheDtype) {
  EXPECT_MMGRAD_ERROR(full({2}, 1e20, DType::I32), "full", "does not fit in i32");
  EXPECT_MMGRAD_ERROR(full({2}, std::nan(""), DType::I64), "full", "does not fit in i64");
  Tensor t = zeros({2}, DType::I32);
  EXPECT_MMGRAD_ERROR(fill_(t, 3e9), "fill_", "does not fit");
  EXPECT_EQ(to_vector<int32_t>(full({2}, -2147483648.0, DType::I32)),
            (std::vector<int32_t>{-2147483648, -2147483648}));
}
