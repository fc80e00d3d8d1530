// Errors: every failure is an mmgrad::Error naming the op and the operands involved.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

TEST(Error, MessageFormat) {
  Error e("myop", "something broke", {"a: f32[2] cpu", "b: i64[3] cpu"});
  EXPECT_EQ(e.op(), "myop");
  EXPECT_EQ(e.detail(), "something broke");
  EXPECT_STREQ(e.what(), "mmgrad: myop: something broke (a: f32[2] cpu; b: i64[3] cpu)");
  Error plain("x", "y");
  EXPECT_STREQ(plain.what(), "mmgrad: x: y");
  EXPECT_MMGRAD_ERROR(fail("someop", "bad thing", {"q: f64[] cpu"}), "someop", "bad thing", "q: f64[] cpu");
  // An Error is a std::runtime_error.
  try {
    fail("op", "msg");
  } catch (const std::runtime_error& r) {
    EXPECT_STREQ(r.what(), "mmgrad: op: msg");
  }
}

TEST(Errors, AddShapeMismatchNamesOpShapesAndDtypes) {
  Tensor a = zeros({2, 3}), b = zeros({4});
  std::string msg = expect_error([&] { add(a, b); }, "add", {"[2, 3]", "[4]", "f32"});
  EXPECT_NE(msg.find("broadcast"), std::string::npos) << msg;
  expect_error([&] { (void)(a * zeros({3, 3})); }, "mul", {"[2, 3]", "[3, 3]", "f32"});
  expect_error([&] { sub(zeros({2, 3}, DType::F64), zeros({2, 2}, DType::F64)); }, "sub", {"[2, 3]", "[2, 2]", "f64"});
}

TEST(Errors, DtypeMix) {
  Tensor a = zeros({2, 3}), b = zeros({2, 3}, DType::F64);
  EXPECT_MMGRAD_ERROR(add(a, b), "add", "different dtypes", "a: f32[2, 3] cpu", "b: f64[2, 3] cpu");
  EXPECT_MMGRAD_ERROR(mul(zeros({2}, DType::I64), zeros({2})), "mul", "i64", "f32");
  EXPECT_MMGRAD_ERROR(matmul(zeros({2, 2}), zeros({2, 2}, DType::F64)), "matmul", "different dtypes");
  EXPECT_MMGRAD_ERROR(where(gt(a, 0.0), a, b), "where", "different dtypes");
  EXPECT_MMGRAD_ERROR(add(zeros({2}, DType::BF16), zeros({2}, DType::BF16)), "add", "bf16");
  EXPECT_MMGRAD_ERROR(add(zeros({2}, DType::Bool), zeros({2}, DType::Bool)), "add", "bool");
  EXPECT_MMGRAD_ERROR(exp(zeros({2}, DType::I64)), "exp", "f32 or f64", "i64[2]");
  EXPECT_MMGRAD_ERROR(where(a, a, a), "where", "bool mask");
}

TEST(Errors, BadDims) {
  Tensor a = zeros({2, 3});
  EXPECT_MMGRAD_ERROR(sum(a, {2}), "sum", "dim 2 is out of range for a tensor with 2 dims");
  EXPECT_MMGRAD_ERROR(sum(a, {-3}), "sum", "dim -3");
  EXPECT_MMGRAD_ERROR(sum(a, {0, 0}), "sum", "twice");
  EXPECT_MMGRAD_ERROR(mean(a, {5}), "mean", "dim 5");
  EXPECT_MMGRAD_ERROR(softmax(a, 2), "softmax", "dim 2");
  EXPECT_MMGRAD_ERROR(a.transpose(0, 2), "transpose", "dim 2");
  EXPECT_MMGRAD_ERROR(max(a, -3), "max", "dim -3");
  EXPECT_MMGRAD_ERROR(concat({a, a}, 2), "concat", "dim 2");
  EXPECT_MMGRAD_ERROR(index_select(a, 2, i64({0}, {1})), "index_select", "dim 2");
}

TEST(Errors, MatmulInnerMismatch) {
  EXPECT_MMGRAD_ERROR(matmul(zeros({2, 3}), zeros({4, 5})), "matmul", "inner dimensions differ: 3 vs 4",
                      "a: f32[2, 3] cpu", "b: f32[4, 5] cpu");
  EXPECT_MMGRAD_ERROR(matmul(zeros({3}), zeros({4})), "matmul", "3 vs 4");
  EXPECT_MMGRAD_ERROR(matmul(zeros({2, 2, 3}), zeros({2, 2, 3})), "matmul", "3 vs 2");
  EXPECT_MMGRAD_ERROR(matmul(zeros({2, 2, 3}), zeros({3, 3, 4})), "matmul", "[2]", "[3]");
  EXPECT_MMGRAD_ERROR(matmul(scalar_tensor(1), zeros({2})), "matmul", "at least one dim");
  EXPECT_MMGRAD_ERROR(linear(zeros({2, 3}), zeros({4, 5})), "linear", "(3)", "(5)");
}

TEST(Errors, CrossEntropyTargetOutOfRange) {
  Tensor logits = zeros({2, 3});
  EXPECT_MMGRAD_ERROR(cross_entropy(logits, i64({0, 3}, {2})), "cross_entropy",
                      "target 3 at row 1 is out of range for 3 classes");
  EXPECT_MMGRAD_ERROR(cross_entropy(logits, i64({-1, 0}, {2})), "cross_entropy", "target -1 at row 0");
  // ignore_index is allowed although it is out of range.
  EXPECT_NO_THROW(cross_entropy(logits, i64({-100, 2}, {2})));
  EXPECT_MMGRAD_ERROR(cross_entropy(logits, i64({0, 1, 2}, {3})), "cross_entropy", "[N, C]",
                      "logits: f32[2, 3] cpu", "target: i64[3] cpu");
  EXPECT_MMGRAD_ERROR(cross_entropy(logits, zeros({2})), "cross_entropy", "indices must be i64 or i32");
}

TEST(Errors, IndexSelectOutOfRange) {
  Tensor x = arange(0, 12).reshape({4, 3});
  EXPECT_MMGRAD_ERROR(index_select(x, 0, i64({0, 4}, {2})), "index_select",
                      "index 4 is out of range for a dimension of size 4");
  EXPECT_MMGRAD_ERROR(index_select(x, 1, i64({-1}, {1})), "index_select", "index -1");
  EXPECT_MMGRAD_ERROR(index_select(x, 0, zeros({1})), "index_select", "i64 or i32");
  EXPECT_MMGRAD_ERROR(index_select(x, 0, i64({0, 1}, {1, 2})), "index_select", "1-D");
  EXPECT_MMGRAD_ERROR(embedding(x, i64({7}, {1})), "embedding", "index 7");
  EXPECT_MMGRAD_ERROR(gather(x, 1, i64({0, 0, 0, 5}, {4, 1})), "gather", "index 5");
  // In range works and gives the rows.
  EXPECT_EQ(fvec(index_select(x, 0, i64({3, 0, 3}, {3}))),
            (std::vector<float>{9, 10, 11, 0, 1, 2, 9, 10, 11}));
}

TEST(Errors, UndefinedTensor) {
  Tensor u, a = zeros({2});
  EXPECT_MMGRAD_ERROR(add(u, a), "add", "operand 'a' is an undefined tensor");
  EXPECT_MMGRAD_ERROR(add(a, u), "add", "operand 'b' is an undefined tensor");
  EXPECT_MMGRAD_ERROR(exp(u), "exp", "undefined");
  EXPECT_MMGRAD_ERROR(u.reshape({2}), "reshape", "undefined");
  EXPECT_MMGRAD_ERROR(sum(u), "sum", "undefined");
  EXPECT_MMGRAD_ERROR(item(u), "item", "undefined");
  EXPECT_MMGRAD_ERROR(u.to(DType::F64), "to", "undefined");
  EXPECT_MMGRAD_ERROR(u.contiguous(), "contiguous", "undefined");
  EXPECT_MMGRAD_ERROR(u.backward(), "backward", "undefined");
}

TEST(Errors, DataPtrWrongDtype) {
  Tensor x = zeros({2, 3}, DType::I64);
  EXPECT_MMGRAD_ERROR(x.data_ptr<float>(), "data_ptr", "requested f32 data from a i64 tensor",
                      "self: i64[2, 3] cpu");
  EXPECT_MMGRAD_ERROR(zeros({1}, DType::BF16).data_ptr<float>(), "data_ptr", "bf16");
  EXPECT_MMGRAD_ERROR(zeros({1}, DType::Bool).data_ptr<int32_t>(), "data_ptr", "bool");
}

TEST(Errors, MiscOperandChecks) {
  EXPECT_MMGRAD_ERROR(item(zeros({2})), "item", "one element", "f32[2] cpu");
  EXPECT_MMGRAD_ERROR(concat({}, 0), "concat", "at least one");
  EXPECT_MMGRAD_ERROR(concat({zeros({2, 3}), zeros({3, 3})}, 1), "concat", "tensor 1", "[3, 3]");
  EXPECT_MMGRAD_ERROR(stack({zeros({2}), zeros({3})}, 0), "stack", "tensor 1");
  EXPECT_MMGRAD_ERROR(split(zeros({4}), 0, 0), "split", "positive");
  EXPECT_MMGRAD_ERROR(layer_norm(zeros({2, 3}), zeros({4}), Tensor()), "layer_norm", "[3]");
  EXPECT_MMGRAD_ERROR(dropout(zeros({2}), 1.5), "dropout", "1.5");
  EXPECT_MMGRAD_ERROR(Tensor(zeros({2}, DType::I64)).set_requires_grad(), "set_requires_grad", "floating");
  Tensor empty_t = zeros({0, 3});
  EXPECT_MMGRAD_ERROR(amax(empty_t), "amax", "empty");
  Tensor dst = zeros({2, 3});
  EXPECT_MMGRAD_ERROR(copy_(dst, zeros({4})), "", "[4]");
}

TEST(Errors, EmbeddingIdOutsideTheVocabularyNamesEmbedding) {
  mmgrad::Tensor w = mmgrad::zeros({10, 4});
  mmgrad::Tensor ids = mmgrad::from_data<int64_t>({1, 12, 3}, {3});
  EXPECT_MMGRAD_ERROR(mmgrad::embedding(w, ids), "embedding", "index 12", "size 10", "vocabulary",
                      "f32[10, 4]");
}

TEST(Errors, ArangeWithTooManyElements) {
  EXPECT_MMGRAD_ERROR(arange(0, 1e30), "arange", "too many");
  EXPECT_MMGRAD_ERROR(arange(0, 1e15), "arange", "too many");
  EXPECT_MMGRAD_ERROR(arange(0, 2e14), "allocate", "out of memory");  // allowed count, no memory
}

TEST(Errors, UndefinedOperandsNameTheOp) {
  Tensor w = zeros({2, 2});
  EXPECT_MMGRAD_ERROR(mean(Tensor()), "mean", "undefined");
  EXPECT_MMGRAD_ERROR(var(Tensor()), "var", "undefined");
  EXPECT_MMGRAD_ERROR(linear(Tensor(), w), "linear", "undefined");
  EXPECT_MMGRAD_ERROR(stack({Tensor()}, 0), "stack", "undefined");
  EXPECT_MMGRAD_ERROR(select(Tensor(), 0, 0), "select", "undefined");
  EXPECT_MMGRAD_ERROR(flatten(Tensor()), "flatten", "undefined");
  EXPECT_MMGRAD_ERROR(chunk(Tensor(), 2, 0), "chunk", "undefined");
  EXPECT_MMGRAD_ERROR(allclose(Tensor(), w), "allclose", "undefined");
}
