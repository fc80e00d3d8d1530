// The autograd engine: accumulation, shared subgraphs, retain_graph, seeds, grad mode,
// detach, leaf rules and the lifetime of the recorded graph.
#include <gtest/gtest.h>

#include <cmath>
#include <memory>
#include <atomic>
#include <thread>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

namespace {
}  // namespace

TEST(Engine, LeafGradOfASquare) {
  Tensor x = leaf({1, 2, 3}, {3});
  EXPECT_TRUE(x.is_leaf());
  EXPECT_TRUE(x.requires_grad());
  Tensor y = sum(mul(x, x));
  EXPECT_FALSE(y.is_leaf());
  ASSERT_TRUE(y.grad_fn() != nullptr);
  EXPECT_EQ(y.grad_fn()->name(), "sum");
  y.backward();
  ASSERT_TRUE(x.grad().defined());
  EXPECT_EQ(x.grad().shape(), (Shape{3}));
  EXPECT_EQ(x.grad().dtype(), DType::F64);
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{2, 4, 6}));
  // The gradient itself is a plain tensor, not part of any graph.
  EXPECT_FALSE(x.grad().requires_grad());
  EXPECT_TRUE(x.grad().grad_fn() == nullptr);
}

TEST(Engine, GradientsAccumulateAcrossBackwardCalls) {
  Tensor x = leaf({1, -2, 0.5}, {3});
  sum(mul(x, x)).backward();
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{2, -4, 1}));
  sum(mul(x, 3.0)).backward();
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{5, -1, 4}));
  // Accumulation is in place into the same gradient tensor.
  Tensor g = x.grad();
  sum(x).backward();
  EXPECT_TRUE(x.grad().is_same(g));
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{6, 0, 5}));
  // Clearing the slot starts afresh.
  x.set_grad(Tensor());
  sum(mul(x, 2.0)).backward();
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{2, 2, 2}));
}

TEST(Engine, TensorUsedTwice) {
  Tensor x = leaf({1, 2, -3}, {3});
  Tensor a = mul(x, 2.0);
  sum(mul(a, a)).backward();  // 4 x^2 -> 8x
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{8, 16, -24}));
  Tensor z = leaf({2, -1}, {2});
  sum(mul(mul(z, z), z)).backward();  // z^3 -> 3 z^2
  EXPECT_EQ(dvec(z.grad()), (std::vector<double>{12, 3}));
  Tensor w = leaf({0.5, 4}, {2});
  sum(add(w, w)).backward();
  EXPECT_EQ(dvec(w.grad()), (std::vector<double>{2, 2}));
}

TEST(Engine, DiamondGraph) {
  Tensor x = leaf({0.1, -0.4, 1.3}, {3});
  Tensor a = exp(x);
  Tensor b = mul(a, 3.0);
  Tensor c = mul(a, a);
  Tensor y = sum(add(b, c));  // 3 e^x + e^2x -> (3 + 2 e^x) e^x
  y.backward();
  std::vector<double> want;
  for (double v : {0.1, -0.4, 1.3}) want.push_back((3 + 2 * std::exp(v)) * std::exp(v));
  EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-12));
  // Two paths of different lengths that meet again, and a leaf feeding both.
  Tensor p = leaf({2}, {1});
  Tensor q = leaf({3}, {1});
  Tensor u = mul(p, q);          // pq
  Tensor v = add(u, p);          // pq + p
  Tensor w = mul(v, u);          // (pq + p) pq = p^2 q^2 + p^2 q
  sum(w).backward();
  EXPECT_EQ(dvec(p.grad()), (std::vector<double>{2 * 2 * 9 + 2 * 2 * 3}));  // 2pq^2 + 2pq
  EXPECT_EQ(dvec(q.grad()), (std::vector<double>{2 * 4 * 3 + 4}));          // 2p^2 q + p^2
}

TEST(Engine, RetainGraphAllowsASecondBackward) {
  Tensor x = leaf({0.5, 1.5}, {2});
  Tensor y = sum(mul(exp(x), x));  // d/dx = e^x (1 + x)
  std::vector<double> g1;
  for (double v : {0.5, 1.5}) g1.push_back(std::exp(v) * (1 + v));
  y.backward(Tensor(), /*retain_graph=*/true);
  EXPECT_TRUE(near_all(dvec(x.grad()), g1, 1e-12));
  y.backward();  // allowed: the graph was retained; this one frees it
  EXPECT_TRUE(near_all(dvec(x.grad()), {2 * g1[0], 2 * g1[1]}, 1e-12));
  // A third backward through the freed graph is an error naming the node and the fix.
  std::string msg = expect_error([&] { y.backward(); }, "sum", {"second time", "retain_graph"});
  EXPECT_NE(msg.find("freed"), std::string::npos) << msg;
  // The failed backward left the gradient alone.
  EXPECT_TRUE(near_all(dvec(x.grad()), {2 * g1[0], 2 * g1[1]}, 1e-12));
}

TEST(Engine, SecondBackwardWithoutRetainGraphIsAnError) {
  Tensor x = leaf({1, 2}, {2});
  Tensor h = exp(x);
  Tensor y = sum(h);
  y.backward();
  expect_error([&] { y.backward(); }, "sum", {"retain_graph"});
  // Also when the second backward starts from an inner node of the freed graph.
  expect_error([&] { h.backward(ones({2}, DType::F64)); }, "exp", {"second time", "retain_graph"});
  EXPECT_STREQ(autograd::current_backward_op(), "backward");
}

TEST(Engine, NonScalarRootNeedsAGradient) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor y = mul(x, 2.0);
  EXPECT_MMGRAD_ERROR(y.backward(), "backward", "a gradient must be given for a non-scalar output",
                      "f64[3] cpu");
  EXPECT_MMGRAD_ERROR(y.backward(ones({2}, DType::F64)), "backward", "must match the output", "[3]", "[2]");
  // The seed must also have the output's dtype.
  EXPECT_MMGRAD_ERROR(y.backward(ones({3}, DType::F32)), "backward", "dtype", "f32[3]");
  // A one-element non-0-dim root counts as a scalar.
  Tensor one = leaf({4}, {1, 1});
  mul(one, 5.0).backward();
  EXPECT_EQ(dvec(one.grad()), (std::vector<double>{5}));
}

TEST(Engine, BackwardWithAGivenGradient) {
  Tensor x = leaf({1, 2, 3, 4}, {2, 2});
  Tensor y = mul(x, 3.0);
  Tensor g = from_data<double>({1, -1, 0.5, 2}, {2, 2});
  y.backward(g);
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{3, -3, 1.5, 6}));
  // The leaf's gradient is a private copy, even when the seed reaches it unchanged.
  Tensor z = leaf({1, 1}, {2});
  Tensor seed = from_data<double>({7, 8}, {2});
  z.clone().backward(seed);
  EXPECT_EQ(dvec(z.grad()), (std::vector<double>{7, 8}));
  EXPECT_FALSE(z.grad().shares_storage(seed));
  fill_(seed, 0.0);
  EXPECT_EQ(dvec(z.grad()), (std::vector<double>{7, 8}));
  // Backward from a leaf itself.
  Tensor s = leaf({2}, {});
  s.backward();
  EXPECT_EQ(dvec(s.grad()), (std::vector<double>{1}));
}

// A gradient with several terms is summed in place when only the engine holds the sum; a
// term the caller still holds (the seed, reaching two inputs unchanged through add) or one
// shared by two inputs must come out untouched.
TEST(Engine, GradientSumsNeverWriteIntoTensorsTheCallerHolds) {
  const std::vector<double> xs = {1, -2, 0.5}, ss = {1, 10, 100};
  {
    // The seed reaches a unchanged through the outer add; mul's term then joins it.
    Tensor x = leaf(xs, {3});
    Tensor a = mul(x, 2.0);
    Tensor seed = from_data<double>(ss, {3});
    add(a, mul(a, 3.0)).backward(seed);  // 4a
    std::vector<double> want;
    for (double s : ss) want.push_back(s * 4 * 2);
    EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-12));
    EXPECT_EQ(dvec(seed), ss) << "the caller's seed was written";
  }
  {
    // add(a, a) hands one tensor to both of its inputs; then more terms follow.
    Tensor x = leaf(xs, {3});
    Tensor a = mul(x, 2.0);
    Tensor seed = from_data<double>(ss, {3});
    add(add(a, a), add(a, mul(a, a))).backward(seed);  // 3a + a^2, four terms reach a
    std::vector<double> want;
    for (size_t i = 0; i < xs.size(); ++i) want.push_back(ss[i] * (3 + 2 * (2 * xs[i])) * 2);
    EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-12));
    EXPECT_EQ(dvec(seed), ss) << "the caller's seed was written";
  }
  // A residual stream: h = x + f(x) twice over, the pattern the in-place sums are for.
  Tensor r = leaf({0.3, -0.7}, {2});
  Tensor h1 = add(r, tanh(r));
  Tensor h2 = add(h1, tanh(h1));
  sum(h2).backward();
  std::vector<double> want_r;
  for (double v : {0.3, -0.7}) {
    const double t1 = std::tanh(v), u = v + t1, t2 = std::tanh(u);
    want_r.push_back((1 + (1 - t2 * t2)) * (1 + (1 - t1 * t1)));
  }
  EXPECT_TRUE(near_all(dvec(r.grad()), want_r, 1e-12));
}

TEST(Engine, BackwardOnATensorWithoutGradIsAnError) {
  Tensor x = from_data<double>({1, 2}, {2});
  EXPECT_MMGRAD_ERROR(sum(x).backward(), "backward", "does not require grad");
  Tensor y = leaf({1}, {1});
  Tensor i = argmax(y, 0);  // integer results are not differentiable
  EXPECT_FALSE(i.requires_grad());
  EXPECT_FALSE(gt(y, 0.0).requires_grad());
}

TEST(Engine, NoGradGuardStopsRecording) {
  Tensor x = leaf({1, 2}, {2});
  EXPECT_TRUE(GradMode::is_enabled());
  {
    NoGradGuard guard;
    EXPECT_FALSE(GradMode::is_enabled());
    Tensor y = mul(x, 2.0);
    EXPECT_FALSE(y.requires_grad());
    EXPECT_TRUE(y.grad_fn() == nullptr);
    EXPECT_TRUE(y.is_leaf());
    EXPECT_EQ(dvec(y), (std::vector<double>{2, 4}));
    Tensor v = x.reshape({2, 1});
    EXPECT_FALSE(v.requires_grad());
    {
      NoGradGuard nested;
      EXPECT_FALSE(GradMode::is_enabled());
    }
    EXPECT_FALSE(GradMode::is_enabled());  // the inner guard restores "off", not "on"
    EXPECT_MMGRAD_ERROR(sum(y).backward(), "backward", "does not require grad");
  }
  EXPECT_TRUE(GradMode::is_enabled());
  EXPECT_TRUE(mul(x, 2.0).requires_grad());
  // Grad mode is per thread.
  {
    NoGradGuard guard;
    bool other_thread_enabled = false;
    std::thread t([&] { other_thread_enabled = GradMode::is_enabled(); });
    t.join();
    EXPECT_TRUE(other_thread_enabled);
  }
  // A graph recorded before the guard can still be differentiated inside it.
  Tensor y = sum(mul(x, x));
  {
    NoGradGuard guard;
    y.backward();
  }
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{2, 4}));
  EXPECT_TRUE(GradMode::is_enabled());
}

TEST(Engine, RequiresGradPropagation) {
  Tensor a = leaf({1, 2}, {2});
  Tensor b = from_data<double>({3, 4}, {2});
  EXPECT_FALSE(add(b, b).requires_grad());
  EXPECT_TRUE(add(a, b).requires_grad());
  EXPECT_TRUE(add(b, a).requires_grad());
  EXPECT_TRUE(a.unsqueeze(0).t().requires_grad());
  EXPECT_TRUE(a.unsqueeze(0).requires_grad());
  EXPECT_TRUE(a.to(DType::F32).requires_grad());
  // Only the inputs that require grad receive one.
  Tensor y = sum(mul(a, b));
  y.backward();
  EXPECT_EQ(dvec(a.grad()), (std::vector<double>{3, 4}));
  EXPECT_FALSE(b.grad().defined());
  // Non-leaves do not keep a gradient.
  Tensor h = mul(a, 2.0);
  sum(h).backward();
  EXPECT_FALSE(h.grad().defined());
}

TEST(Engine, DetachCutsTheGraph) {
  Tensor x = leaf({1, 2, 3}, {3});
  Tensor d = x.detach();
  EXPECT_TRUE(d.shares_storage(x));
  EXPECT_FALSE(d.requires_grad());
  EXPECT_TRUE(d.is_leaf());
  EXPECT_TRUE(d.grad_fn() == nullptr);
  EXPECT_EQ(dvec(d), dvec(x));
  sum(mul(d, x)).backward();  // d is a constant: the gradient is d, not 2x
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{1, 2, 3}));
  Tensor h = mul(x, 2.0);
  Tensor hd = h.detach();
  EXPECT_TRUE(hd.shares_storage(h));
  EXPECT_FALSE(hd.requires_grad());
  EXPECT_TRUE(hd.grad_fn() == nullptr);
  // A detached tensor can become a new leaf.
  hd.set_requires_grad();
  sum(mul(hd, hd)).backward();
  EXPECT_EQ(dvec(hd.grad()), (std::vector<double>{4, 8, 12}));
}

TEST(Engine, SetRequiresGradRules) {
  Tensor x = leaf({1}, {1});
  Tensor h = mul(x, 2.0);
  EXPECT_MMGRAD_ERROR(h.set_requires_grad(), "set_requires_grad", "leaf", "f64[1] cpu");
  EXPECT_MMGRAD_ERROR(h.set_requires_grad(false), "set_requires_grad", "leaf");
  Tensor i = zeros({2}, DType::I64);
  EXPECT_MMGRAD_ERROR(i.set_requires_grad(), "set_requires_grad", "floating", "i64[2] cpu");
  Tensor b = zeros({2}, DType::Bool);
  EXPECT_MMGRAD_ERROR(b.set_requires_grad(), "set_requires_grad", "floating");
  EXPECT_NO_THROW(i.set_requires_grad(false));
  Tensor f = zeros({2});
  f.set_requires_grad();
  EXPECT_TRUE(f.requires_grad());
  f.set_requires_grad(false);
  EXPECT_FALSE(f.requires_grad());
  EXPECT_FALSE(mul(f, 2.0).requires_grad());
  Tensor bf = zeros({2}, DType::BF16);
  EXPECT_NO_THROW(bf.set_requires_grad());
}

TEST(Engine, GradientThroughDtypeConversion) {
  Tensor x = leaf({1, 2}, {2});
  Tensor y = sum(mul(x.to(DType::F32), 2.0));
  EXPECT_EQ(y.dtype(), DType::F32);
  y.backward();
  ASSERT_EQ(x.grad().dtype(), DType::F64);
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{2, 2}));
}

TEST(Engine, GradOfNonContiguousLeafHasTheLeafsShape) {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor w = from_data<double>({1, 10, 100, 1000, 10000, 100000}, {3, 2});
  sum(mul(x.t(), w)).backward();  // d/dx[i][j] = w[j][i]
  ASSERT_EQ(x.grad().shape(), (Shape{2, 3}));
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{1, 100, 10000, 10, 1000, 100000}));
}

TEST(Engine, SavedTensorsAreFreedAfterBackward) {
  Tensor x = leaf({0.1, 0.2, 0.3, 0.4}, {4});
  std::weak_ptr<Storage> saved;
  Tensor y;
  {
    Tensor h = exp(x);  // exp saves its output for backward
    saved = h.impl().storage;
    y = sum(mul(h, 2.0));
  }
  // Only the graph holds the intermediate now.
  ASSERT_FALSE(saved.expired());
  y.backward();
  EXPECT_TRUE(saved.expired()) << "backward should release the tensors the graph saved";
  std::vector<double> want;
  for (double v : {0.1, 0.2, 0.3, 0.4}) want.push_back(2 * std::exp(v));
  EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-12));
}

TEST(Engine, RetainGraphKeepsSavedTensorsUntilTheGraphGoes) {
  Tensor x = leaf({0.5, 1.0}, {2});
  std::weak_ptr<Storage> saved;
  Tensor y;
  {
    Tensor h = tanh(x);
    saved = h.impl().storage;
    y = sum(h);
  }
  y.backward(Tensor(), true);
  EXPECT_FALSE(saved.expired());
  std::weak_ptr<autograd::Node> root = y.grad_fn();
  y = Tensor();  // dropping the output frees the whole graph: no reference cycles
  EXPECT_TRUE(root.expired());
  EXPECT_TRUE(saved.expired());
}

TEST(Engine, GraphDoesNotOwnLeavesOrCreateCycles) {
  Tensor x = leaf({1, 2}, {2});
  std::weak_ptr<TensorImpl> wx = x.impl_ptr();
  Tensor y = sum(mul(exp(x), 3.0));
  std::weak_ptr<autograd::Node> node = y.grad_fn();
  // exp saves its output, not x; the leaf is referenced weakly by the graph.
  x = Tensor();
  EXPECT_TRUE(wx.expired());
  EXPECT_NO_THROW(y.backward());  // nothing left to accumulate into
  y = Tensor();
  EXPECT_TRUE(node.expired());
}

TEST(Engine, LongChains) {
  Tensor x = leaf({1.0}, {1});
  Tensor y = x;
  const int n = 3000;
  for (int i = 0; i < n; ++i) y = mul(y, 1.0001);
  sum(y).backward();
  EXPECT_NEAR(dvec(x.grad())[0], std::pow(1.0001, n), 1e-9);
}

// Destroying a very long graph must not overflow the stack (nodes own their inputs' nodes).
// Run in a child process so that a crash is reported as a failure of this test only.
TEST(EngineDeathTest, DestroyingAVeryLongGraphDoesNotOverflowTheStack) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  EXPECT_EXIT(
      {
        Tensor x = leaf({1.0}, {1});
        Tensor y = x;
        for (int i = 0; i < 300000; ++i) y = add(y, 0.0);
        y = Tensor();
        std::exit(0);
      },
      ::testing::ExitedWithCode(0), "");
}

TEST(Engine, IndependentGraphsOnSeveralThreads) {
  std::vector<std::thread> threads;
  std::atomic<int> wrong{0};
  for (int t = 0; t < 4; ++t)
    threads.emplace_back([t, &wrong] {
      for (int rep = 0; rep < 50; ++rep) {
        const double base = t * 100 + rep;
        Tensor x = leaf({base, base + 1, base + 2}, {3});
        Tensor y = sum(mul(mul(x, x), 0.5));  // gradient: x
        y.backward();
        if (dvec(x.grad()) != std::vector<double>{base, base + 1, base + 2}) ++wrong;
        if (!GradMode::is_enabled()) ++wrong;  // backward restores grad mode on its thread
      }
    });
  for (auto& th : threads) th.join();
  EXPECT_EQ(wrong.load(), 0);
}
