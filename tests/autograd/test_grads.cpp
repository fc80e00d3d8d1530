// Leaf gradients of small graphs compared with hand-derived formulas, including gradients
// of broadcast operands (reduced back to each input's shape) and of views.
#include <gtest/gtest.h>

#include <cmath>
#include <functional>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

namespace {
const double kPi = 3.14159265358979323846;
}  // namespace

TEST(Grads, BroadcastOperandsReduceToTheirShapes) {
  // f = sum((a + b) * c * s), a [2,3], b [3], c [2,1], s [] (0-dim)
  std::vector<double> av{1, 2, 3, 4, 5, 6}, bv{0.5, -1, 2}, cv{3, -2};
  double sv = 1.5;
  Tensor a = leaf(av, {2, 3}), b = leaf(bv, {3}), c = leaf(cv, {2, 1}), s = leaf({sv}, {});
  Tensor f = sum(mul(mul(add(a, b), c), s));
  f.backward();
  ASSERT_EQ(a.grad().shape(), (Shape{2, 3}));
  ASSERT_EQ(b.grad().shape(), (Shape{3}));
  ASSERT_EQ(c.grad().shape(), (Shape{2, 1}));
  ASSERT_EQ(s.grad().shape(), (Shape{}));
  std::vector<double> ga, gb(3, 0), gc(2, 0);
  double gs = 0;
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 3; ++j) {
      double apb = av[i * 3 + j] + bv[j];
      ga.push_back(cv[i] * sv);
      gb[j] += cv[i] * sv;
      gc[i] += apb * sv;
      gs += apb * cv[i];
    }
  EXPECT_TRUE(near_all(dvec(a.grad()), ga, 1e-12));
  EXPECT_TRUE(near_all(dvec(b.grad()), gb, 1e-12));
  EXPECT_TRUE(near_all(dvec(c.grad()), gc, 1e-12));
  EXPECT_NEAR(item(s.grad()), gs, 1e-12);
}

TEST(Grads, BroadcastInTheMiddleAndLeadingDims) {
  // x [2,1,3] - y [4,1] -> [2,4,3]; f = sum(w * (x - y)) with w = 1..24
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 1, 3});
  Tensor y = leaf({1, 2, 3, 4}, {4, 1});
  Tensor w = arange(1, 25, 1, DType::F64).reshape({2, 4, 3});
  sum(mul(w, sub(x, y))).backward();
  std::vector<double> gx(6, 0), gy(4, 0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 4; ++j)
      for (int k = 0; k < 3; ++k) {
        double wv = 1 + i * 12 + j * 3 + k;
        gx[i * 3 + k] += wv;
        gy[j] -= wv;
      }
  ASSERT_EQ(x.grad().shape(), (Shape{2, 1, 3}));
  ASSERT_EQ(y.grad().shape(), (Shape{4, 1}));
  EXPECT_TRUE(near_all(dvec(x.grad()), gx, 1e-12));
  EXPECT_TRUE(near_all(dvec(y.grad()), gy, 1e-12));
}

TEST(Grads, ScalarOperandsAndOperators) {
  Tensor x = leaf({1, 2, 4}, {3});
  // f = sum(3/x + (2 - x) * 5 - x / 4 + (-x))
  Tensor f = sum(add(sub(add(3.0 / x, (2.0 - x) * 5.0), x / 4.0), -x));
  f.backward();
  std::vector<double> want;
  for (double v : {1.0, 2.0, 4.0}) want.push_back(-3 / (v * v) - 5 - 0.25 - 1);
  EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-12));
}

TEST(Grads, Division) {
  std::vector<double> av{1, 2, 3, 4}, bv{2, -0.5};
  Tensor a = leaf(av, {2, 2}), b = leaf(bv, {2});
  sum(div(a, b)).backward();
  std::vector<double> ga, gb(2, 0);
  for (int i = 0; i < 2; ++i)
    for (int j = 0; j < 2; ++j) {
      ga.push_back(1 / bv[j]);
      gb[j] += -av[i * 2 + j] / (bv[j] * bv[j]);
    }
  EXPECT_TRUE(near_all(dvec(a.grad()), ga, 1e-12));
  EXPECT_TRUE(near_all(dvec(b.grad()), gb, 1e-12));
}

TEST(Grads, Matmul) {
  // f = sum(W * (A @ B)): dA = W @ B^T, dB = A^T @ W
  std::vector<double> Av{1, 2, 3, 4, 5, 6}, Bv{1, 0, -1, 2, 0.5, 1, 3, -2, 2, 2, 1, 0}, Wv{1, 2, 3, 4, 5, 6, 7, 8};
  Tensor A = leaf(Av, {2, 3}), B = leaf(Bv, {3, 4});
  Tensor W = from_data<double>(Wv, {2, 4});
  Tensor P = matmul(A, B);
  ASSERT_EQ(P.shape(), (Shape{2, 4}));
  sum(mul(W, P)).backward();
  std::vector<double> gA(6, 0), gB(12, 0);
  for (int i = 0; i < 2; ++i)
    for (int k = 0; k < 3; ++k)
      for (int j = 0; j < 4; ++j) {
        gA[i * 3 + k] += Wv[i * 4 + j] * Bv[k * 4 + j];
        gB[k * 4 + j] += Av[i * 3 + k] * Wv[i * 4 + j];
      }
  EXPECT_TRUE(near_all(dvec(A.grad()), gA, 1e-12));
  EXPECT_TRUE(near_all(dvec(B.grad()), gB, 1e-12));
}

TEST(Grads, BatchedMatmulWithBroadcastWeightAndVectors) {
  // A [2,2,3] @ B [3,2]: B's gradient sums over the batch.
  std::vector<double> Av{1, 2, 3, 4, 5, 6, -1, 0, 1, 2, -2, 0.5}, Bv{1, -1, 2, 0, 0.5, 3};
  Tensor A = leaf(Av, {2, 2, 3}), B = leaf(Bv, {3, 2});
  sum(matmul(A, B)).backward();
  std::vector<double> gA(12, 0), gB(6, 0);
  for (int n = 0; n < 2; ++n)
    for (int i = 0; i < 2; ++i)
      for (int k = 0; k < 3; ++k)
        for (int j = 0; j < 2; ++j) {
          gA[n * 6 + i * 3 + k] += Bv[k * 2 + j];
          gB[k * 2 + j] += Av[n * 6 + i * 3 + k];
        }
  EXPECT_TRUE(near_all(dvec(A.grad()), gA, 1e-12));
  EXPECT_TRUE(near_all(dvec(B.grad()), gB, 1e-12));
  // Vector-vector and matrix-vector products.
  Tensor u = leaf({1, 2, 3}, {3}), v = leaf({4, 5, 6}, {3});
  Tensor dot = matmul(u, v);
  EXPECT_EQ(dot.dim(), 0);
  EXPECT_EQ(item(dot), 32.0);
  dot.backward();
  EXPECT_EQ(dvec(u.grad()), (std::vector<double>{4, 5, 6}));
  EXPECT_EQ(dvec(v.grad()), (std::vector<double>{1, 2, 3}));
  Tensor M = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  Tensor mv = matmul(M, from_data<double>({1, 0, -1}, {3}));
  EXPECT_EQ(dvec(mv), (std::vector<double>{-2, -2}));
  sum(mv).backward();
  EXPECT_EQ(dvec(M.grad()), (std::vector<double>{1, 0, -1, 1, 0, -1}));
}

TEST(Grads, Linear) {
  // y = x W^T + b; f = sum(y * y) / 2 -> dW = (y^T x), db = sum_rows(y), dx = y W
  Tensor x = leaf({1, 2, -1, 0.5}, {2, 2});
  Tensor W = leaf({0.5, -1, 2, 1, 0, 3}, {3, 2});
  Tensor b = leaf({0.1, 0.2, 0.3}, {3});
  Tensor y = linear(x, W, b);
  auto yv = dvec(y);
  mul(sum(mul(y, y)), 0.5).backward();
  std::vector<double> xv{1, 2, -1, 0.5}, Wv{0.5, -1, 2, 1, 0, 3};
  std::vector<double> gx(4, 0), gW(6, 0), gb(3, 0);
  for (int n = 0; n < 2; ++n)
    for (int o = 0; o < 3; ++o) {
      gb[o] += yv[n * 3 + o];
      for (int i = 0; i < 2; ++i) {
        gW[o * 2 + i] += yv[n * 3 + o] * xv[n * 2 + i];
        gx[n * 2 + i] += yv[n * 3 + o] * Wv[o * 2 + i];
      }
    }
  EXPECT_TRUE(near_all(dvec(x.grad()), gx, 1e-12));
  EXPECT_TRUE(near_all(dvec(W.grad()), gW, 1e-12));
  EXPECT_TRUE(near_all(dvec(b.grad()), gb, 1e-12));
}

TEST(Grads, UnaryFunctions) {
  const std::vector<double> xs{0.3, 1.7, 2.2};
  struct Case {
    const char* name;
    std::function<Tensor(const Tensor&)> f;
    std::function<double(double)> df;
  };
  const std::vector<Case> cases = {
      {"exp", [](const Tensor& x) { return exp(x); }, [](double v) { return std::exp(v); }},
      {"log", [](const Tensor& x) { return log(x); }, [](double v) { return 1 / v; }},
      {"sqrt", [](const Tensor& x) { return sqrt(x); }, [](double v) { return 0.5 / std::sqrt(v); }},
      {"rsqrt", [](const Tensor& x) { return rsqrt(x); }, [](double v) { return -0.5 * std::pow(v, -1.5); }},
      {"pow3", [](const Tensor& x) { return pow(x, 3); }, [](double v) { return 3 * v * v; }},
      {"pow-0.5", [](const Tensor& x) { return pow(x, -0.5); }, [](double v) { return -0.5 * std::pow(v, -1.5); }},
      {"square", [](const Tensor& x) { return square(x); }, [](double v) { return 2 * v; }},
      {"reciprocal", [](const Tensor& x) { return reciprocal(x); }, [](double v) { return -1 / (v * v); }},
      {"tanh", [](const Tensor& x) { return tanh(x); },
       [](double v) { return 1 - std::tanh(v) * std::tanh(v); }},
      {"sigmoid", [](const Tensor& x) { return sigmoid(x); },
       [](double v) {
         double s = 1 / (1 + std::exp(-v));
         return s * (1 - s);
       }},
      {"erf", [](const Tensor& x) { return erf(x); },
       [](double v) { return 2 / std::sqrt(kPi) * std::exp(-v * v); }},
      {"gelu", [](const Tensor& x) { return gelu(x); },
       [](double v) {
         double Phi = 0.5 * (1 + std::erf(v / std::sqrt(2.0)));
         double phi = std::exp(-v * v / 2) / std::sqrt(2 * kPi);
         return Phi + v * phi;
       }},
      {"quick_gelu", [](const Tensor& x) { return quick_gelu(x); },
       [](double v) {
         double s = 1 / (1 + std::exp(-1.702 * v));
         return s + v * 1.702 * s * (1 - s);
       }},
      {"neg", [](const Tensor& x) { return neg(x); }, [](double) { return -1.0; }},
  };
  for (const Case& c : cases) {
    SCOPED_TRACE(c.name);
    Tensor x = leaf(xs, {3});
    sum(c.f(x)).backward();
    std::vector<double> want;
    for (double v : xs) want.push_back(c.df(v));
    EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-9));
    // Negative inputs too, for the functions defined there.
    if (std::string(c.name) == "log" || std::string(c.name) == "sqrt" || std::string(c.name) == "rsqrt" ||
        std::string(c.name) == "pow-0.5")
      continue;
    Tensor xn = leaf({-0.3, -1.7, -2.2}, {3});
    sum(c.f(xn)).backward();
    std::vector<double> wantn;
    for (double v : {-0.3, -1.7, -2.2}) wantn.push_back(c.df(v));
    EXPECT_TRUE(near_all(dvec(xn.grad()), wantn, 1e-9));
  }
}

TEST(Grads, PiecewiseFunctions) {
  Tensor x = leaf({-2, -0.5, 0.5, 3}, {4});
  sum(relu(x)).backward();
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{0, 0, 1, 1}));
  Tensor y = leaf({-2, -0.5, 0.5, 3}, {4});
  sum(abs(y)).backward();
  EXPECT_EQ(dvec(y.grad()), (std::vector<double>{-1, -1, 1, 1}));
  Tensor z = leaf({-2, 1, 0.5, 3}, {4});
  Tensor other = from_data<double>({0, 0, 2, 1}, {4});
  sum(maximum(z, other)).backward();
  EXPECT_EQ(dvec(z.grad()), (std::vector<double>{0, 1, 0, 1}));
  Tensor m = leaf({1, 5}, {2});
  sum(minimum(m, 2.0)).backward();
  EXPECT_EQ(dvec(m.grad()), (std::vector<double>{1, 0}));
  // Ties split the gradient evenly between both operands.
  Tensor p = leaf({2}, {1}), q = leaf({2}, {1});
  sum(maximum(p, q)).backward();
  EXPECT_EQ(dvec(p.grad()), (std::vector<double>{0.5}));
  EXPECT_EQ(dvec(q.grad()), (std::vector<double>{0.5}));
  Tensor c = leaf({1, 2, 3}, {3}), d = leaf({10, 20, 30}, {3});
  Tensor cond = gt(from_data<double>({1, -1, 1}, {3}), 0.0);
  sum(mul(where(cond, c, d), from_data<double>({1, 2, 3}, {3}))).backward();
  EXPECT_EQ(dvec(c.grad()), (std::vector<double>{1, 0, 3}));
  EXPECT_EQ(dvec(d.grad()), (std::vector<double>{0, 2, 0}));
}

TEST(Grads, Reductions) {
  Tensor x = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mean(x)).backward();
  EXPECT_TRUE(near_all(dvec(x.grad()), std::vector<double>(6, 1.0 / 6), 1e-15));
  // Sum over one dim with weights on the result.
  Tensor y = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mul(sum(y, {1}), from_data<double>({10, 100}, {2}))).backward();
  EXPECT_EQ(dvec(y.grad()), (std::vector<double>{10, 10, 10, 100, 100, 100}));
  Tensor yk = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mul(mean(yk, {0}, true), from_data<double>({1, 2, 3}, {1, 3}))).backward();
  EXPECT_EQ(dvec(yk.grad()), (std::vector<double>{0.5, 1, 1.5, 0.5, 1, 1.5}));
  // var with Bessel's correction: d/dx_i = 2 (x_i - mean) / (n - 1)
  std::vector<double> vv{1, 4, 2, 8};
  Tensor v = leaf(vv, {4});
  Tensor var_v = var(v);
  // mean 3.75; squared deviations 7.5625 + 0.0625 + 3.0625 + 18.0625 = 28.75
  EXPECT_NEAR(item(var_v), 28.75 / 3, 1e-12);
  var_v.backward();
  std::vector<double> gv;
  for (double e : vv) gv.push_back(2 * (e - 3.75) / 3);
  EXPECT_TRUE(near_all(dvec(v.grad()), gv, 1e-12));
  // amax splits ties evenly; max over a dim sends the gradient to the chosen index.
  Tensor a = leaf({1, 3, 3, 2}, {4});
  amax(a).backward();
  EXPECT_EQ(dvec(a.grad()), (std::vector<double>{0, 0.5, 0.5, 0}));
  Tensor b = leaf({1, 7, 3, 9, 2, 4}, {2, 3});
  auto [values, idx] = max(b, 1);
  EXPECT_EQ(dvec(values), (std::vector<double>{7, 9}));
  EXPECT_EQ(ivec(idx), (std::vector<int64_t>{1, 0}));
  sum(mul(values, from_data<double>({2, 3}, {2}))).backward();
  EXPECT_EQ(dvec(b.grad()), (std::vector<double>{0, 2, 0, 3, 0, 0}));
}

TEST(Grads, SoftmaxAndCrossEntropy) {
  std::vector<double> lv{1, 2, 0.5, -1, 0, 3};
  Tensor logits = leaf(lv, {2, 3});
  Tensor target = from_data<int64_t>({2, 0}, {2});
  Tensor loss = cross_entropy(logits, target);
  // Expected: mean over rows of lse - x[target]; gradient (softmax - onehot) / N.
  double expected_loss = 0;
  std::vector<double> g(6);
  for (int r = 0; r < 2; ++r) {
    double s = 0;
    for (int j = 0; j < 3; ++j) s += std::exp(lv[r * 3 + j]);
    int t = r == 0 ? 2 : 0;
    expected_loss += (std::log(s) - lv[r * 3 + t]) / 2;
    for (int j = 0; j < 3; ++j) g[r * 3 + j] = (std::exp(lv[r * 3 + j]) / s - (j == t)) / 2;
  }
  EXPECT_NEAR(item(loss), expected_loss, 1e-12);
  loss.backward();
  EXPECT_TRUE(near_all(dvec(logits.grad()), g, 1e-12));
  // log_softmax: d/dx sum(w * log_softmax(x)) = w - softmax(x) * sum(w)
  Tensor x = leaf({0.1, 0.2, 0.7}, {3});
  std::vector<double> wv{1, -2, 0.5};
  sum(mul(log_softmax(x, 0), from_data<double>(wv, {3}))).backward();
  double z = std::exp(0.1) + std::exp(0.2) + std::exp(0.7);
  std::vector<double> want;
  for (int j = 0; j < 3; ++j) want.push_back(wv[j] - std::exp(std::vector<double>{0.1, 0.2, 0.7}[j]) / z * (-0.5));
  EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-12));
  // softmax along dim 0 of a matrix: each column independently.
  Tensor m = leaf({1, 2, 3, 4}, {2, 2});
  Tensor sm = softmax(m, 0);
  auto smv = dvec(sm);
  EXPECT_NEAR(smv[0] + smv[2], 1.0, 1e-12);
  sum(mul(sm, from_data<double>({1, 0, 0, 0}, {2, 2}))).backward();
  // d s00 / d m00 = s00 (1 - s00), d s00 / d m10 = -s00 s10; column 1 gets nothing.
  EXPECT_TRUE(near_all(dvec(m.grad()), {smv[0] * (1 - smv[0]), 0, -smv[0] * smv[2], 0}, 1e-12));
}

TEST(Grads, ViewsRouteGradientsToTheRightElements) {
  Tensor x = leaf({0, 1, 2, 3, 4, 5}, {2, 3});
  Tensor w = arange(1, 7, 1, DType::F64);
  // reshape of a transpose (a copy inside) keeps the mapping.
  sum(mul(x.t().reshape({6}), w)).backward();  // x.t().reshape = [x00, x10, x01, x11, x02, x12]
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{1, 3, 5, 2, 4, 6}));
  Tensor y = leaf({0, 1, 2, 3, 4, 5, 6, 7, 8, 9}, {10});
  sum(slice(y, 0, 1, 8, 3)).backward();  // picks 1, 4, 7
  EXPECT_EQ(dvec(y.grad()), (std::vector<double>{0, 1, 0, 0, 1, 0, 0, 1, 0, 0}));
  Tensor z = leaf({1, 2, 3, 4, 5, 6}, {2, 3});
  sum(mul(select(z, 1, 2), from_data<double>({10, 20}, {2}))).backward();
  EXPECT_EQ(dvec(z.grad()), (std::vector<double>{0, 0, 10, 0, 0, 20}));
  Tensor e = leaf({1, 2}, {2, 1});
  sum(mul(e.expand({2, 3}), arange(0, 6, 1, DType::F64).reshape({2, 3}))).backward();
  EXPECT_EQ(dvec(e.grad()), (std::vector<double>{0 + 1 + 2, 3 + 4 + 5}));
  Tensor p = leaf({0, 1, 2, 3, 4, 5, 6, 7}, {2, 2, 2});
  Tensor pw = arange(1, 9, 1, DType::F64).reshape({2, 2, 2});
  sum(mul(p.permute({2, 0, 1}), pw)).backward();  // perm[k][i][j] = p[i][j][k]
  EXPECT_EQ(dvec(p.grad()), (std::vector<double>{1, 5, 2, 6, 3, 7, 4, 8}));
  Tensor n = leaf({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor nn = n.narrow(0, 1, 2).unsqueeze(0).squeeze(0).view({4});
  sum(mul(nn, nn)).backward();
  EXPECT_EQ(dvec(n.grad()), (std::vector<double>{0, 0, 6, 8, 10, 12}));
}

TEST(Grads, IndexingJoiningAndSplitting) {
  Tensor x = leaf({1, 2, 3, 4, 5, 6, 7, 8}, {4, 2});
  // Repeated indices accumulate.
  sum(index_select(x, 0, from_data<int64_t>({1, 1, 3}, {3}))).backward();
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{0, 0, 2, 2, 0, 0, 1, 1}));
  Tensor emb = leaf({1, 2, 3, 4, 5, 6}, {3, 2});
  Tensor ids = from_data<int64_t>({2, 0, 2, 2}, {2, 2});
  Tensor out = embedding(emb, ids);
  EXPECT_EQ(out.shape(), (Shape{2, 2, 2}));
  sum(out).backward();
  EXPECT_EQ(dvec(emb.grad()), (std::vector<double>{1, 1, 0, 0, 3, 3}));
  Tensor g = leaf({1, 2, 3, 4}, {2, 2});
  sum(gather(g, 1, from_data<int64_t>({1, 1, 0, 1}, {2, 2}))).backward();
  EXPECT_EQ(dvec(g.grad()), (std::vector<double>{0, 2, 1, 1}));
  Tensor a = leaf({1, 2}, {1, 2}), b = leaf({3, 4, 5, 6}, {2, 2});
  Tensor cat = concat({a, b}, 0);
  EXPECT_EQ(cat.shape(), (Shape{3, 2}));
  sum(mul(cat, arange(1, 7, 1, DType::F64).reshape({3, 2}))).backward();
  EXPECT_EQ(dvec(a.grad()), (std::vector<double>{1, 2}));
  EXPECT_EQ(dvec(b.grad()), (std::vector<double>{3, 4, 5, 6}));
  Tensor s1 = leaf({1, 2}, {2}), s2 = leaf({3, 4}, {2});
  sum(mul(stack({s1, s2}, 1), from_data<double>({1, 10, 100, 1000}, {2, 2}))).backward();
  EXPECT_EQ(dvec(s1.grad()), (std::vector<double>{1, 100}));
  EXPECT_EQ(dvec(s2.grad()), (std::vector<double>{10, 1000}));
  Tensor sp = leaf({1, 2, 3, 4, 5}, {5});
  auto parts = split(sp, 2, 0);
  ASSERT_EQ(parts.size(), 3u);
  sum(add(mul(sum(parts[0]), 2.0), mul(sum(parts[2]), 3.0))).backward();
  EXPECT_EQ(dvec(sp.grad()), (std::vector<double>{2, 2, 0, 0, 3}));
}

TEST(Grads, LayerNormMatchesTheFormula) {
  // Without affine parameters: y = (x - mu) * rstd, and for f = sum(w * y):
  // dx = rstd * (w - mean(w) - y * mean(w * y))
  std::vector<double> xv{1, 2, 4, 7}, wv{0.5, -1, 2, 0.25};
  Tensor x = leaf(xv, {1, 4});
  Tensor y = layer_norm(x, Tensor(), Tensor(), 1e-5);
  auto yv = dvec(y);
  sum(mul(y, from_data<double>(wv, {1, 4}))).backward();
  double mu = 3.5, var = 0;
  for (double v : xv) var += (v - mu) * (v - mu) / 4;
  double rstd = 1 / std::sqrt(var + 1e-5);
  double mw = 0, mwy = 0;
  for (int i = 0; i < 4; ++i) {
    EXPECT_NEAR(yv[i], (xv[i] - mu) * rstd, 1e-12);
    mw += wv[i] / 4;
    mwy += wv[i] * yv[i] / 4;
  }
  std::vector<double> want;
  for (int i = 0; i < 4; ++i) want.push_back(rstd * (wv[i] - mw - yv[i] * mwy));
  EXPECT_TRUE(near_all(dvec(x.grad()), want, 1e-10));
}

// Review fix: reducing over a size-1 dim (alone or with others) must not spread the gradient
// over the whole tensor.
TEST(Grads, AmaxAminOverSizeOneDims) {
  Tensor x = leaf({3, 1, 2}, {3, 1});
  sum(amax(x, {1})).backward();
  EXPECT_EQ(dvec(x.grad()), (std::vector<double>{1, 1, 1}));
  Tensor a = leaf({1, 5, 2, 2}, {2, 1, 2});
  sum(amin(a, {1})).backward();
  EXPECT_EQ(dvec(a.grad()), (std::vector<double>{1, 1, 1, 1}));
  // A size-1 dim next to a real one: ties are counted over the real one only.
  Tensor b = leaf({4, 4, 4, 2}, {1, 2, 2});
  sum(amax(b, {0, 1})).backward();
  EXPECT_EQ(dvec(b.grad()), (std::vector<double>{0.5, 1, 0.5, 0}));
}

// Review fix: matmul with an empty inner dim and a batched left operand.
TEST(Grads, MatmulWithEmptyInnerDim) {
  Tensor a = zeros({2, 3, 0}, DType::F64).set_requires_grad();
  Tensor b = zeros({0, 4}, DType::F64).set_requires_grad();
  Tensor y = matmul(a, b);
  EXPECT_EQ(y.shape(), (Shape{2, 3, 4}));
  EXPECT_EQ(item(sum(abs(y))), 0.0);
  sum(y).backward();
  EXPECT_EQ(a.grad().shape(), (Shape{2, 3, 0}));
  EXPECT_EQ(b.grad().shape(), (Shape{0, 4}));
}
