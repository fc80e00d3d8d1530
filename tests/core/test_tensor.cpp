#include <gtest/gtest.h>

#include "autograd/ops.h"

using namespace mmgrad;

TEST(Tensor, Smoke) {
  Tensor a = arange(0, 6).reshape({2, 3});
  EXPECT_EQ(a.shape(), (Shape{2, 3}));
  EXPECT_DOUBLE_EQ(item(sum(a)), 15.0);
}
