// Sums that keep the innermost dim (bias gradients: [rows, width] -> [width], and LayerNorm's
// weight and bias gradients) run split into fixed chunks of rows, so both threads share one
// gradient. Results must match a double reference and must not depend on the thread count.
#include <gtest/gtest.h>

#include <cmath>
#include <vector>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/parallel.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

namespace {

// Reference: the sum over dim `d` of a contiguous 3-D f32 tensor [a, b, c], in double.
std::vector<double> reference_sum(const Tensor& x, int d) {
  const int64_t A = x.shape()[0], B = x.shape()[1], C = x.shape()[2];
  const float* p = x.data_ptr<float>();
  std::vector<double> out(static_cast<size_t>(d == 0 ? B * C : A * C), 0.0);
  for (int64_t i = 0; i < A; ++i)
    for (int64_t j = 0; j < B; ++j)
      for (int64_t k = 0; k < C; ++k)
        out[static_cast<size_t>(d == 0 ? j * C + k : i * C + k)] += p[(i * B + j) * C + k];
  return out;
}

std::vector<float> values(const Tensor& t) {
  Tensor c = contiguous(t);
  return std::vector<float>(c.data_ptr<float>(), c.data_ptr<float>() + c.numel());
}

}  // namespace

TEST(ColumnSums, MatchDoubleAndDoNotDependOnTheThreadCount) {
  NoGradGuard no_grad;
  mmtest::ThreadCountGuard threads;
  // Shapes around the 512-row chunks and 256-column blocks: one chunk, several with a
  // ragged last one, one column block and several, and a kept outer dim ([3, 1100, 40] summed
  // over dim 1).
  struct Case {
    Shape shape;
    int dim;
  };
  for (const Case& c : {Case{{1, 300, 96}, 1}, Case{{1, 4160, 96}, 1}, Case{{1, 1537, 384}, 1},
                        Case{{1, 513, 600}, 1}, Case{{3, 1100, 40}, 1}, Case{{2050, 5, 7}, 0}}) {
    SCOPED_TRACE(::testing::Message() << "shape " << c.shape[0] << "x" << c.shape[1] << "x"
                                      << c.shape[2] << " dim " << c.dim);
    manual_seed(11);
    Tensor x = randn(c.shape);
    const std::vector<double> want = reference_sum(x, c.dim);
    std::vector<float> first;
    for (int n : {1, 2, 3}) {
      set_num_threads(n);
      std::vector<float> got = values(sum(x, {c.dim}));
      ASSERT_EQ(got.size(), want.size());
      for (size_t i = 0; i < got.size(); ++i)
        ASSERT_NEAR(got[i], want[i], 1e-6 * (1.0 + std::abs(want[i]))) << "element " << i;
      if (first.empty()) first = got;
      EXPECT_EQ(got, first) << "sum changed with " << n << " threads";
    }
  }
}

TEST(ColumnSums, MaxOverRowsStillTakesEveryRow) {
  NoGradGuard no_grad;
  // Max keeps one pass over all rows (no chunks): put each column's maximum in a late row.
  Tensor x = zeros({1500, 70});
  float* p = x.data_ptr<float>();
  for (int64_t c = 0; c < 70; ++c) p[(1499 - c * 7) * 70 + c] = 1.0f + static_cast<float>(c);
  std::vector<float> got = values(amax(x, {0}));
  for (int64_t c = 0; c < 70; ++c) EXPECT_EQ(got[static_cast<size_t>(c)], 1.0f + c);
}

TEST(ColumnSums, LayerNormParameterGradientsMatchF64AndDoNotDependOnTheThreadCount) {
  // LayerNorm's weight and bias gradients are column sums over all rows, computed per
  // (128-column block, 512-row chunk): 1100 rows x 200 columns spans three chunks (the last
  // ragged) and two blocks (the second ragged). f32 against the same op in f64.
  mmtest::ThreadCountGuard threads;
  manual_seed(5);
  const Tensor x64 = randn({1100, 200}, DType::F64), dy64 = randn({1100, 200}, DType::F64);
  const Tensor w64 = randn({200}, DType::F64), b64 = randn({200}, DType::F64);
  auto grads = [&](DType dt) {
    Tensor x = x64.to(dt).detach().set_requires_grad(), w = w64.to(dt).detach().set_requires_grad();
    Tensor b = b64.to(dt).detach().set_requires_grad();
    layer_norm(x, w, b).backward(dy64.to(dt));
    return std::vector<Tensor>{x.grad().to(DType::F64), w.grad().to(DType::F64), b.grad().to(DType::F64)};
  };
  const std::vector<Tensor> want = grads(DType::F64);
  std::vector<std::vector<double>> first;
  for (int n : {1, 2, 3}) {
    set_num_threads(n);
    const std::vector<Tensor> got = grads(DType::F32);
    std::vector<std::vector<double>> now;
    for (size_t g = 0; g < got.size(); ++g) {
      const double* p = got[g].data_ptr<double>();
      const double* q = want[g].data_ptr<double>();
      for (int64_t i = 0; i < got[g].numel(); ++i)
        ASSERT_NEAR(p[i], q[i], 2e-4 * (1.0 + std::abs(q[i]))) << "gradient " << g << " element " << i;
      now.emplace_back(p, p + got[g].numel());
    }
    if (first.empty()) first = now;
    EXPECT_EQ(now, first) << "gradients changed with " << n << " threads";
  }
}
