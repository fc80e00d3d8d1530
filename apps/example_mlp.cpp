#include "apps/example_mlp.h"

#include <chrono>
#include <cmath>
#include <vector>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace mmgrad::apps {
namespace {

// Two interleaved spirals: not linearly separable, so the hidden layers must do real work.
void make_spirals(int64_t per_class, Generator& gen, Tensor& x, Tensor& y) {
  Tensor noise = randn({2 * per_class, 2}, DType::F32, Device::cpu(), &gen);
  std::vector<float> nv = to_vector<float>(noise);
  std::vector<float> xs(2 * per_class * 2);
  std::vector<int64_t> ys(2 * per_class);
  for (int64_t c = 0; c < 2; ++c)
    for (int64_t i = 0; i < per_class; ++i) {
      int64_t k = c * per_class + i;
      double r = 0.1 + 0.9 * static_cast<double>(i) / per_class;
      double a = 3.0 * M_PI * static_cast<double>(i) / per_class + c * M_PI;
      xs[2 * k] = static_cast<float>(r * std::cos(a) + 0.02 * nv[2 * k]);
      xs[2 * k + 1] = static_cast<float>(r * std::sin(a) + 0.02 * nv[2 * k + 1]);
      ys[k] = c;
    }
  x = from_data(xs, {2 * per_class, 2});
  y = from_data(ys, {2 * per_class});
}

struct Linear {
  Tensor weight, bias;
  Linear(int64_t in, int64_t out, Generator& gen) {
    // Kaiming-uniform-like init, as PyTorch's nn.Linear does.
    double bound = 1.0 / std::sqrt(static_cast<double>(in));
    weight = sub(mul(rand({out, in}, DType::F32, Device::cpu(), &gen), 2 * bound), bound);
    bias = sub(mul(rand({out}, DType::F32, Device::cpu(), &gen), 2 * bound), bound);
    weight.set_requires_grad();
    bias.set_requires_grad();
  }
  Tensor operator()(const Tensor& x) const { return linear(x, weight, bias); }
};

}  // namespace

double run_mlp_example(const MlpOptions& o) {
  Generator gen(o.seed);
  Tensor x, y;
  make_spirals(o.points, gen, x, y);
  Linear l1(2, o.hidden, gen), l2(o.hidden, o.hidden, gen), l3(o.hidden, 2, gen);
  std::vector<Tensor> params = {l1.weight, l1.bias, l2.weight, l2.bias, l3.weight, l3.bias};
  std::vector<Tensor> velocity;
  for (const Tensor& p : params) velocity.push_back(zeros_like(p));
  int64_t n_params = 0;
  for (const Tensor& p : params) n_params += p.numel();
  fmt::print("MLP 2-{}-{}-2 (gelu), {} parameters, {} points, SGD lr {} momentum {}\n", o.hidden,
             o.hidden, n_params, x.shape()[0], o.lr, o.momentum);

  auto forward = [&](const Tensor& input) { return l3(gelu(l2(gelu(l1(input))))); };
  auto start = std::chrono::steady_clock::now();
  double accuracy = 0;
  for (int64_t step = 1; step <= o.steps; ++step) {
    for (Tensor& p : params) p.set_grad(Tensor());
    Tensor logits = forward(x);
    Tensor loss = cross_entropy(logits, y);
    loss.backward();
    {
      NoGradGuard no_grad;  // in-place parameter updates are not part of the graph
      for (size_t i = 0; i < params.size(); ++i) {
        mul_(velocity[i], o.momentum);
        add_(velocity[i], params[i].grad());
        add_(params[i], velocity[i], -o.lr);
      }
    }
    if (step % o.log_every == 0 || step == 1 || step == o.steps) {
      NoGradGuard no_grad;
      Tensor predicted = argmax(forward(x), 1);
      accuracy = item(mean(eq(predicted, y).to(DType::F32)));
      double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - start).count();
      fmt::print("step {:4d}  loss {:.4f}  accuracy {:.3f}  {:.0f} ms\n", step, item(loss), accuracy, ms);
    }
  }
  return accuracy;
}

}  // namespace mmgrad::apps
