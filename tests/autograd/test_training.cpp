// End-to-end: small models trained with plain SGD written here, through the whole op set
// (linear, gelu, cross_entropy, mean, square) and the engine.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/rng.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmtest;

namespace {

// Parameter initialised as N(0, scale^2), a leaf that requires grad.
Tensor param(const Shape& shape, double scale, Generator& g) {
  Tensor p;
  {
    NoGradGuard no_grad;
    p = mul(randn(shape, DType::F32, Device::cpu(), &g), scale);
  }
  p.set_requires_grad();
  return p;
}

void sgd_step(std::vector<Tensor>& params, double lr) {
  NoGradGuard no_grad;
  for (Tensor& p : params) {
    ASSERT_TRUE(p.grad().defined());
    add_(p, p.grad(), -lr);
    p.set_grad(Tensor());
  }
}

}  // namespace

// XOR-like task: label = 1 when x0 * x1 > 0, points uniform in [-1, 1]^2. Not linearly
// separable, so the hidden layers must do the work.
TEST(Training, MlpWithTwoGeluHiddenLayersLearnsXor) {
  Generator g(2024);
  const int64_t N = 256, H = 32;
  Tensor x;
  Tensor y;
  {
    NoGradGuard no_grad;
    x = sub(mul(rand({N, 2}, DType::F32, Device::cpu(), &g), 2.0), 1.0);
    Tensor prod = mul(select(x, 1, 0), select(x, 1, 1));
    y = gt(prod, 0.0).to(DType::I64);
  }
  auto labels = ivec(y);
  int64_t positives = 0;
  for (int64_t l : labels) positives += l;
  ASSERT_GT(positives, N / 4);
  ASSERT_LT(positives, 3 * N / 4);

  Tensor W1 = param({H, 2}, 1.0, g), b1 = zeros({H}).set_requires_grad();
  Tensor W2 = param({H, H}, 1.0 / std::sqrt(double(H)), g), b2 = zeros({H}).set_requires_grad();
  Tensor W3 = param({2, H}, 1.0 / std::sqrt(double(H)), g), b3 = zeros({2}).set_requires_grad();
  std::vector<Tensor> params{W1, b1, W2, b2, W3, b3};
  auto forward = [&] {
    Tensor h1 = gelu(linear(x, W1, b1));
    Tensor h2 = gelu(linear(h1, W2, b2));
    return linear(h2, W3, b3);
  };

  double first_loss = 0, loss_value = 0;
  const int steps = 600;
  for (int step = 0; step < steps; ++step) {
    Tensor loss = cross_entropy(forward(), y);
    loss_value = item(loss);
    if (step == 0) first_loss = loss_value;
    ASSERT_TRUE(std::isfinite(loss_value)) << "step " << step;
    loss.backward();
    sgd_step(params, 0.5);
    if (HasFatalFailure()) return;
  }
  // Stated targets: the loss starts near ln 2 = 0.69 and ends below 0.1, at least 5x lower,
  // with at least 95% of the training points classified correctly.
  EXPECT_NEAR(first_loss, std::log(2.0), 0.2);
  EXPECT_LT(loss_value, 0.1);
  EXPECT_LT(loss_value, first_loss / 5);
  Tensor logits;
  {
    NoGradGuard no_grad;
    logits = forward();
  }
  auto pred = ivec(argmax(logits, 1));
  int64_t correct = 0;
  for (int64_t i = 0; i < N; ++i) correct += pred[i] == labels[i];
  EXPECT_GE(correct, N * 95 / 100) << correct << " of " << N;
}

// y = X w + b + noise with known w, b; SGD on the mean squared error recovers them.
TEST(Training, LinearRegressionRecoversKnownWeights) {
  Generator g(7);
  const int64_t N = 512;
  const std::vector<float> w_true{2.0f, -3.0f, 0.5f};
  const float b_true = 1.0f;
  Tensor X = randn({N, 3}, DType::F32, Device::cpu(), &g);
  Tensor target;
  {
    NoGradGuard no_grad;
    Tensor noise = mul(randn({N}, DType::F32, Device::cpu(), &g), 0.01);
    target = add(add(matmul(X, from_data<float>(w_true, {3})), static_cast<double>(b_true)), noise);
  }
  Tensor w = zeros({3}).set_requires_grad();
  Tensor b = zeros({}).set_requires_grad();
  std::vector<Tensor> params{w, b};
  double first_loss = 0, loss_value = 0;
  for (int step = 0; step < 300; ++step) {
    Tensor pred = add(matmul(X, w), b);
    Tensor loss = mean(square(sub(pred, target)));
    loss_value = item(loss);
    if (step == 0) first_loss = loss_value;
    loss.backward();
    ASSERT_EQ(b.grad().shape(), (Shape{}));
    sgd_step(params, 0.1);
    if (HasFatalFailure()) return;
  }
  auto wv = fvec(w);
  // Stated tolerance: each weight and the bias within 0.01 of the truth (noise sd 0.01);
  // the final loss is the noise floor (about 1e-4), far below the first (about 14).
  for (int i = 0; i < 3; ++i) EXPECT_NEAR(wv[i], w_true[i], 0.01) << "w[" << i << "]";
  EXPECT_NEAR(item(b), b_true, 0.01);
  EXPECT_GT(first_loss, 5.0);
  EXPECT_LT(loss_value, 3e-4);
}
