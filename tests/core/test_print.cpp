// Printing: fmt::format("{}", t), operator<< and Tensor::str().
#include <gtest/gtest.h>

#include <limits>
#include <sstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "autograd/print.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

TEST(Print, SmallF32Matrix) {
  Tensor t = f32({0.1f, 0.2f, 0.3f, 0.4f}, {2, 2});
  const std::string want = "tensor([[0.1000, 0.2000],\n        [0.3000, 0.4000]], f32, cpu)";
  EXPECT_EQ(fmt::format("{}", t), want);
  EXPECT_EQ(t.str(), want);
  std::ostringstream os;
  os << t;
  EXPECT_EQ(os.str(), want);
}

TEST(Print, VectorsScalarsAndDtypes) {
  EXPECT_EQ(fmt::format("{}", arange(0, 3, 1, DType::I64)), "tensor([0, 1, 2], i64, cpu)");
  EXPECT_EQ(fmt::format("{}", i64({-5, 12}, {2})), "tensor([-5, 12], i64, cpu)");
  EXPECT_EQ(fmt::format("{}", from_data<int32_t>({7}, {1})), "tensor([7], i32, cpu)");
  EXPECT_EQ(fmt::format("{}", scalar_tensor(2.5)), "tensor(2.5000, f32, cpu)");
  EXPECT_EQ(fmt::format("{}", f64({1.5, -0.25}, {2})), "tensor([ 1.5000, -0.2500], f64, cpu)");
  EXPECT_EQ(fmt::format("{}", full({1}, 1.5, DType::BF16)), "tensor([1.5000], bf16, cpu)");
  EXPECT_EQ(fmt::format("{}", zeros({0})), "tensor([], f32, cpu)");
}

TEST(Print, BoolTensor) {
  Tensor b = gt(arange(0, 3), 0.5);
  ASSERT_EQ(b.dtype(), DType::Bool);
  EXPECT_EQ(fmt::format("{}", b), "tensor([false,  true,  true], bool, cpu)");
  EXPECT_EQ(fmt::format("{}", ones({2, 1}, DType::Bool)), "tensor([[true],\n        [true]], bool, cpu)");
}

TEST(Print, ColumnsAreRightAligned) {
  EXPECT_EQ(fmt::format("{}", f32({1, -10, 100, 0.5f}, {2, 2})),
            "tensor([[  1.0000, -10.0000],\n"
            "        [100.0000,   0.5000]], f32, cpu)");
  EXPECT_EQ(fmt::format("{}", i64({5, -123, 42}, {3})), "tensor([   5, -123,   42], i64, cpu)");
}

TEST(Print, ThreeDimsAndNonContiguous) {
  Tensor a = arange(0, 8, 1, DType::I64).reshape({2, 2, 2});
  EXPECT_EQ(fmt::format("{}", a),
            "tensor([[[0, 1],\n"
            "         [2, 3]],\n"
            "        [[4, 5],\n"
            "         [6, 7]]], i64, cpu)");
  Tensor t = arange(0, 6).reshape({2, 3}).t();
  EXPECT_EQ(fmt::format("{}", t),
            "tensor([[0.0000, 3.0000],\n"
            "        [1.0000, 4.0000],\n"
            "        [2.0000, 5.0000]], f32, cpu)");
}

TEST(Print, SpecialAndScientificValues) {
  const float inf = std::numeric_limits<float>::infinity();
  Tensor t = f32({std::nanf(""), inf, -inf, 1e-5f, 1234567.0f, 0.0f, -0.5f}, {7});
  EXPECT_EQ(fmt::format("{}", t),
            "tensor([       nan,        inf,       -inf, 1.0000e-05, 1.2346e+06,     0.0000,    -0.5000], f32, cpu)");
}

TEST(Print, LargeTensorsAreSummarised) {
  Tensor big = arange(0, 2000);
  EXPECT_EQ(fmt::format("{}", big),
            "tensor([   0.0000,    1.0000,    2.0000, ..., 1997.0000, 1998.0000, 1999.0000], f32, cpu)");
  // 1000 elements is the limit: printed in full.
  std::string full_print = fmt::format("{}", arange(0, 1000, 1, DType::I64));
  EXPECT_EQ(full_print.find("..."), std::string::npos);
  EXPECT_NE(full_print.find(", 500, "), std::string::npos);
  EXPECT_EQ(full_print.substr(0, 22), "tensor([  0,   1,   2,");
  Tensor m = arange(0, 10000, 1, DType::I64).reshape({100, 100});
  EXPECT_EQ(fmt::format("{}", m),
            "tensor([[   0,    1,    2, ...,   97,   98,   99],\n"
            "        [ 100,  101,  102, ...,  197,  198,  199],\n"
            "        [ 200,  201,  202, ...,  297,  298,  299],\n"
            "        ...,\n"
            "        [9700, 9701, 9702, ..., 9797, 9798, 9799],\n"
            "        [9800, 9801, 9802, ..., 9897, 9898, 9899],\n"
            "        [9900, 9901, 9902, ..., 9997, 9998, 9999]], i64, cpu)");
  // Only dims longer than 6 are cut.
  std::string wide = fmt::format("{}", arange(0, 1400, 1, DType::I64).reshape({2, 700}));
  EXPECT_EQ(wide,
            "tensor([[   0,    1,    2, ...,  697,  698,  699],\n"
            "        [ 700,  701,  702, ..., 1397, 1398, 1399]], i64, cpu)");
}

TEST(Print, RequiresGradMarker) {
  Tensor x = ones({2});
  EXPECT_EQ(fmt::format("{}", x), "tensor([1.0000, 1.0000], f32, cpu)");
  x.set_requires_grad();
  EXPECT_EQ(fmt::format("{}", x), "tensor([1.0000, 1.0000], f32, cpu, requires_grad)");
  Tensor y = mul(x, 2.0);
  EXPECT_EQ(fmt::format("{}", y), "tensor([2.0000, 2.0000], f32, cpu, requires_grad)");
  EXPECT_EQ(fmt::format("{}", x.detach()), "tensor([1.0000, 1.0000], f32, cpu)");
  {
    NoGradGuard no_grad;
    EXPECT_EQ(fmt::format("{}", mul(x, 3.0)), "tensor([3.0000, 3.0000], f32, cpu)");
  }
  // Printing does not record anything or change the tensor.
  EXPECT_TRUE(y.grad_fn() != nullptr);
  EXPECT_EQ(fvec(y), (std::vector<float>{2, 2}));
}

TEST(Print, UndefinedTensor) {
  EXPECT_EQ(fmt::format("{}", Tensor()), "tensor(undefined)");
}

TEST(Print, LargeIntegersAreExact) {
  Tensor t = from_data<int64_t>({9007199254740993, -9223372036854775807}, {2});
  EXPECT_EQ(t.str(), "tensor([    9007199254740993, -9223372036854775807], i64, cpu)");
}
