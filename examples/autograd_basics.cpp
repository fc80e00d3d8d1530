// Autograd in mmgrad, from a tensor to a gradient:
//   1. tensors are created with a shape (and dtype, device); ops make new tensors;
//   2. leaves marked with set_requires_grad record every op applied to them;
//   3. backward() on a scalar fills .grad() of every leaf that led to it.
// The program checks the gradients against the formulas worked out by hand and against
// finite differences (gradcheck), and exits non-zero if any is wrong.
#include <mmgrad/mmgrad.h>

#include <cmath>
#include <cstdio>

using namespace mmgrad;

int main() {
  // y = sum(tanh(W x + b)^2) for a 3x2 weight W, a 2-vector x and a 3-vector bias b.
  Tensor W = from_data(std::vector<double>{0.1, -0.2, 0.3, 0.4, -0.5, 0.6}, {3, 2}).set_requires_grad();
  Tensor b = from_data(std::vector<double>{0.01, 0.02, 0.03}, {3}).set_requires_grad();
  Tensor x = from_data(std::vector<double>{1.5, -2.0}, {2, 1});

  Tensor h = add(reshape(matmul(W, x), {3}), b);  // [3]: records matmul, reshape, add
  Tensor y = sum(square(tanh(h)));                // a scalar
  y.backward();                                   // dy/dW and dy/db are now in W.grad(), b.grad()
  std::printf("y = %.6f\n", item(y));

  // By hand: dy/dh_i = 2 tanh(h_i) (1 - tanh(h_i)^2); dy/db = dy/dh; dy/dW_ij = dy/dh_i x_j.
  const std::vector<double> hv = to_vector<double>(h.detach()), gb = to_vector<double>(b.grad()),
                            gW = to_vector<double>(W.grad()), xv = to_vector<double>(x);
  double worst = 0;
  for (int i = 0; i < 3; ++i) {
    const double t = std::tanh(hv[i]), dh = 2 * t * (1 - t * t);
    worst = std::max(worst, std::abs(gb[i] - dh));
    for (int j = 0; j < 2; ++j) worst = std::max(worst, std::abs(gW[i * 2 + j] - dh * xv[j]));
  }
  std::printf("largest difference from the hand-written gradient: %.2e\n", worst);

  // gradcheck compares the recorded backward with central differences (float64).
  const GradcheckResult check = gradcheck(
      [&](const std::vector<Tensor>& in) { return sum(square(tanh(add(reshape(matmul(in[0], x), {3}), in[1])))); },
      {W.detach().set_requires_grad(), b.detach().set_requires_grad()});
  const bool ok = check.ok;
  std::printf("gradcheck: %s (largest error %.2e)\n", ok ? "passed" : check.message.c_str(), check.max_abs_error);

  // Without grad mode nothing is recorded: inference costs no graph.
  {
    NoGradGuard no_grad;
    Tensor z = matmul(W, x);
    std::printf("under NoGradGuard, requires_grad = %s\n", z.requires_grad() ? "true" : "false");
  }
  return ok && worst < 1e-12 ? 0 : 1;
}
