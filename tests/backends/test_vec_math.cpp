// The branch-free f32 exp and sigmoid used by the CPU kernels, against libm in double.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "backends/cpu/vec_math.h"

using mmgrad::cpu::exp_f32;
using mmgrad::cpu::sigmoid_fast;

TEST(VecMath, ExpIsWithinThreeUlpOverItsRange) {
  // 2 million points across the normal range; the bound is 3 ulp of the true value
  // (relative 3 * 2^-23 ~ 3.6e-7): range reduction plus a degree-7 polynomial in f32.
  double worst = 0;
  for (int i = 0; i <= 2000000; ++i) {
    float x = static_cast<float>(-87.3 + (88.72 + 87.3) * i / 2000000.0);
    double want = std::exp(static_cast<double>(x));
    double got = exp_f32(x);
    worst = std::max(worst, std::abs(got - want) / want);
  }
  EXPECT_LT(worst, 3 * 0x1p-23) << "worst relative error " << worst;
}

TEST(VecMath, ExpSpecialValues) {
  const float inf = std::numeric_limits<float>::infinity();
  EXPECT_EQ(exp_f32(0.0f), 1.0f);
  EXPECT_EQ(exp_f32(inf), inf);
  EXPECT_EQ(exp_f32(-inf), 0.0f);
  EXPECT_EQ(exp_f32(89.0f), inf);
  EXPECT_EQ(exp_f32(-110.0f), 0.0f);
  // Denormal results keep their absolute accuracy.
  EXPECT_NEAR(exp_f32(-100.0f), std::exp(-100.0), 1e-45);
  EXPECT_TRUE(std::isnan(exp_f32(std::nanf(""))));
  // Just below the overflow threshold the result is finite and close to e^x.
  float big = exp_f32(88.7f);
  EXPECT_TRUE(std::isfinite(big));
  EXPECT_NEAR(big / std::exp(static_cast<double>(88.7f)), 1.0, 1e-6);
}

TEST(VecMath, SigmoidIsAccurateAndSaturatesCleanly) {
  const float inf = std::numeric_limits<float>::infinity();
  double worst = 0;
  for (int i = 0; i <= 200000; ++i) {
    float x = static_cast<float>(-80.0 + 160.0 * i / 200000.0);
    double want = 1.0 / (1.0 + std::exp(-static_cast<double>(x)));
    worst = std::max(worst, std::abs(sigmoid_fast(x) - want) / want);
  }
  EXPECT_LT(worst, 1e-6);
  EXPECT_EQ(sigmoid_fast(inf), 1.0f);
  EXPECT_EQ(sigmoid_fast(-inf), 0.0f);
  EXPECT_EQ(sigmoid_fast(-200.0f), 0.0f);
  EXPECT_TRUE(std::isnan(sigmoid_fast(std::nanf(""))));
}
