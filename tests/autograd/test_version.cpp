// The version counter: in-place changes to tensors the graph saved are reported at
// backward, and in-place ops on tensors that require grad are refused in grad mode.
#include <gtest/gtest.h>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

namespace {
}  // namespace

TEST(Version, InPlaceOpsBumpTheCounterOnce) {
  Tensor t = zeros({3}, DType::F64);
  uint64_t v = t.version();
  add_(t, 1.0);
  EXPECT_EQ(t.version(), v + 1);
  mul_(t, 2.0);
  EXPECT_EQ(t.version(), v + 2);
  Tensor o = full({3}, 4.0, DType::F64);
  add_(t, o, 0.5);
  EXPECT_EQ(t.version(), v + 3);
  div_(t, o);
  EXPECT_EQ(t.version(), v + 4);
  mul_(t, o);
  fill_(t, 1.0);
  zero_(t);
  copy_(t, o);
  EXPECT_EQ(t.version(), v + 8);
  EXPECT_EQ(dvec(t), (std::vector<double>{4, 4, 4}));
  EXPECT_EQ(o.version(), 0u);  // the source of an in-place op is not modified
  // Out-of-place ops leave the version alone.
  Tensor u = add(t, 1.0);
  EXPECT_EQ(t.version(), v + 8);
  EXPECT_EQ(u.version(), 0u);
}

TEST(Version, InPlaceValues) {
  Tensor t = from_data<double>({1, 2, 3}, {3});
  add_(t, from_data<double>({10, 20, 30}, {3}), 2);
  EXPECT_EQ(dvec(t), (std::vector<double>{21, 42, 63}));
  div_(t, from_data<double>({3}, {1}));  // broadcasts
  EXPECT_EQ(dvec(t), (std::vector<double>{7, 14, 21}));
  mul_(t, from_data<double>({1, 0, -1}, {3}));
  EXPECT_EQ(dvec(t), (std::vector<double>{7, 0, -21}));
  copy_(t, from_data<float>({5}, {1}));  // converts dtype and broadcasts
  EXPECT_EQ(dvec(t), (std::vector<double>{5, 5, 5}));
}

TEST(Version, ModifyingASavedInputIsReportedAtBackward) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor w = from_data<double>({4, 5, 6}, {3});
  Tensor y = sum(mul(x, w));  // mul saves w for x's gradient
  {
    NoGradGuard no_grad;
    mul_(w, 2.0);
  }
  std::string msg = expect_error([&] { y.backward(); }, "mul",
                                 {"modified in place", "version 1 now, 0 when saved", "clone()"});
  EXPECT_NE(msg.find("f64[3] cpu"), std::string::npos) << msg;
  EXPECT_STREQ(autograd::current_backward_op(), "backward");
  EXPECT_FALSE(x.grad().defined());
}

TEST(Version, ModifyingASavedOutputIsReportedAtBackward) {
  Tensor x = leaf({0.1, 0.2}, {2});
  Tensor h = exp(x);  // exp saves its output
  Tensor y = sum(mul(h, 3.0));
  {
    NoGradGuard no_grad;
    add_(h, 1.0);  // h requires grad, but grad mode is off: allowed
  }
  EXPECT_MMGRAD_ERROR(y.backward(), "exp", "modified in place");
}

TEST(Version, ModifyingThroughAnotherViewIsReported) {
  Tensor x = leaf({1, 2, 3, 4}, {4});
  Tensor w = from_data<double>({1, 1, 1, 1}, {4});
  Tensor y = sum(mul(x, w.narrow(0, 0, 4)));
  Tensor part = w.narrow(0, 2, 2);  // shares w's storage and so its version
  fill_(part, 7.0);
  EXPECT_MMGRAD_ERROR(y.backward(), "mul", "modified in place");
  // A leaf changed through a detached alias while the graph saved it.
  Tensor z = leaf({1, 2}, {2});
  Tensor q = sum(mul(z, z));
  Tensor alias = z.detach();
  add_(alias, 1.0);
  EXPECT_MMGRAD_ERROR(q.backward(), "mul", "modified in place");
}

TEST(Version, ChangesToUnsavedTensorsAreFine) {
  Tensor x = leaf({1, 2}, {2});
  Tensor c = from_data<double>({5, 6}, {2});
  Tensor y = sum(add(x, c));  // add saves nothing
  add_(c, 100.0);
  EXPECT_NO_THROW(y.backward());
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{1, 1}));
  // Modifying after backward is fine too.
  Tensor x2 = leaf({1, 2}, {2});
  Tensor w = from_data<double>({3, 4}, {2});
  Tensor y2 = sum(mul(x2, w));
  y2.backward();
  mul_(w, 0.0);
  EXPECT_EQ(dvec(x2.grad()), (std::vector<double>{3, 4}));
}

TEST(Version, InPlaceOnALeafThatRequiresGradIsRefusedInGradMode) {
  Tensor x = leaf({1, 2}, {2});
  Tensor o = ones({2}, DType::F64);
  EXPECT_MMGRAD_ERROR(add_(x, 1.0), "add_", "requires grad", "NoGradGuard", "f64[2] cpu");
  EXPECT_MMGRAD_ERROR(add_(x, o), "add_", "requires grad");
  EXPECT_MMGRAD_ERROR(mul_(x, 2.0), "mul_", "requires grad");
  EXPECT_MMGRAD_ERROR(div_(x, o), "div_", "requires grad");
  EXPECT_MMGRAD_ERROR(fill_(x, 0.0), "fill_", "requires grad");
  EXPECT_MMGRAD_ERROR(zero_(x), "fill_", "requires grad");
  EXPECT_MMGRAD_ERROR(copy_(x, o), "copy_", "requires grad");
  EXPECT_EQ(dvec(x), (std::vector<double>{1, 2}));  // untouched
  EXPECT_EQ(x.version(), 0u);
  // Non-leaves that require grad, and views of the leaf, are refused as well.
  Tensor h = mul(x, 2.0);
  EXPECT_MMGRAD_ERROR(add_(h, 1.0), "add_", "requires grad");
  Tensor v = x.narrow(0, 0, 1);
  EXPECT_MMGRAD_ERROR(fill_(v, 3.0), "fill_", "requires grad");
  // With grad mode off (as in an optimizer step) the update goes through.
  {
    NoGradGuard no_grad;
    add_(x, o, -0.5);
  }
  EXPECT_EQ(dvec(x), (std::vector<double>{0.5, 1.5}));
  EXPECT_EQ(x.version(), 1u);
  EXPECT_TRUE(x.requires_grad());
  EXPECT_TRUE(x.is_leaf());
}

// Review fixes: in-place sources that overlap the destination in another layout, and
// in-place sources that require grad.
TEST(Version, InPlaceWithAnOverlappingSourceUsesItsOldValues) {
  NoGradGuard no_grad;
  Tensor x = from_data<double>({1, 2, 3, 4}, {2, 2});
  add_(x, transpose(x, 0, 1));
  EXPECT_EQ(dvec(x), (std::vector<double>{2, 5, 5, 8}));
  Tensor y = from_data<double>({1, 2, 3, 4, 5, 6}, {2, 3});
  add_(y, narrow(y, 0, 0, 1));
  EXPECT_EQ(dvec(y), (std::vector<double>{2, 4, 6, 5, 7, 9}));
  Tensor big = randn({256, 256}, DType::F64);
  Tensor expected = contiguous(transpose(big, 0, 1));
  copy_(big, transpose(big, 0, 1));
  EXPECT_TRUE(allclose(big, expected, 0, 0));
  // The same view as source is fine elementwise and is not copied.
  Tensor z = from_data<double>({1, 2}, {2});
  add_(z, z);
  EXPECT_EQ(dvec(z), (std::vector<double>{2, 4}));
}

TEST(Version, InPlaceFromASourceThatRequiresGradIsRefused) {
  Tensor w = leaf({1, 2, 3}, {3});
  Tensor buf = zeros({3}, DType::F64);
  EXPECT_MMGRAD_ERROR(copy_(buf, mul(w, 2.0)), "copy_", "source requires grad", "src: f64[3]");
  EXPECT_MMGRAD_ERROR(add_(buf, w), "add_", "source requires grad");
  // Detached, or under NoGradGuard, it is allowed.
  copy_(buf, detach(w));
  EXPECT_EQ(dvec(buf), (std::vector<double>{1, 2, 3}));
  {
    NoGradGuard no_grad;
    add_(buf, w);
  }
  EXPECT_EQ(dvec(buf), (std::vector<double>{2, 4, 6}));
}
