// Optimizers against the update rules written out in double, the schedule, and clipping.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"
#include "train/optimizer.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

using namespace mmgrad;
using namespace mmgrad::train;

namespace {
// Sets .grad of each parameter to the given values.
void set_grads(NamedTensors& ps, const std::vector<std::vector<double>>& gs) {
  for (size_t i = 0; i < ps.size(); ++i) ps[i].second.set_grad(from_data(gs[i], ps[i].second.shape()));
}
}  // namespace

TEST(AdamW, MatchesTheUpdateRuleAndSkipsDecayOnVectorsAndScalars) {
  NamedTensors ps = {{"w", from_data<double>({0.5, -1.0, 2.0, 0.25}, {2, 2}).set_requires_grad()},
                     {"b", from_data<double>({0.1, -0.2}, {2}).set_requires_grad()},
                     {"logit_scale", scalar_tensor(2.0, DType::F64).set_requires_grad()}};
  const double lr = 1e-2, wd = 0.1, b1 = 0.9, b2 = 0.999, eps = 1e-8;
  AdamW opt(ps, wd, b1, b2, eps);
  std::vector<std::vector<double>> p = {{0.5, -1.0, 2.0, 0.25}, {0.1, -0.2}, {2.0}};
  std::vector<std::vector<double>> m = {{0, 0, 0, 0}, {0, 0}, {0}}, v = m;
  const std::vector<std::vector<std::vector<double>>> grads = {
      {{0.3, -0.1, 0.0, 1.0}, {0.5, 0.5}, {-0.2}},
      {{-0.2, 0.4, 0.1, 0.0}, {0.0, 1.0}, {0.3}},
      {{1.0, 1.0, -1.0, 0.5}, {-0.5, 0.2}, {0.1}}};
  for (int t = 1; t <= 3; ++t) {
    set_grads(ps, grads[t - 1]);
    opt.step(lr);
    double bc1 = 1 - std::pow(b1, t), bc2 = 1 - std::pow(b2, t);
    for (size_t i = 0; i < p.size(); ++i)
      for (size_t j = 0; j < p[i].size(); ++j) {
        double g = grads[t - 1][i][j];
        m[i][j] = b1 * m[i][j] + (1 - b1) * g;
        v[i][j] = b2 * v[i][j] + (1 - b2) * g * g;
        if (i == 0) p[i][j] *= 1 - lr * wd;  // only the matrix decays
        p[i][j] -= lr / bc1 * m[i][j] / (std::sqrt(v[i][j]) / std::sqrt(bc2) + eps);
      }
  }
  for (size_t i = 0; i < p.size(); ++i) {
    std::vector<double> got = to_vector<double>(ps[i].second);
    for (size_t j = 0; j < p[i].size(); ++j) EXPECT_NEAR(got[j], p[i][j], 1e-14) << ps[i].first << " " << j;
  }
  EXPECT_EQ(opt.steps(), 3);
  EXPECT_EQ(opt.state().size(), 6u);
  EXPECT_EQ(opt.state()[0].first, "exp_avg.w");
}

namespace {
// 45 parameters (more than CUDA's 40-entry table) of sizes around the 16384-element chunk
// (the CPU's) and the 4096-element block (CUDA's), an empty one among them.
struct ManyParams {
  std::vector<Tensor> p, g, m, v;
  std::vector<double> decay;
};
ManyParams many_params(DType dtype, Device device = Device::cpu()) {
  Generator gen(8);
  const int64_t sizes[] = {1, 7, 4095, 4097, 16383, 16384, 16385, 0, 40000};
  ManyParams mp;
  for (int i = 0; i < 45; ++i) {
    const Shape shape{sizes[i % 9]};
    mp.p.push_back(randn(shape, dtype, Device::cpu(), &gen).to(device));
    mp.g.push_back(randn(shape, dtype, Device::cpu(), &gen).to(device));
    mp.m.push_back(mul(randn(shape, dtype, Device::cpu(), &gen), 0.1).to(device));
    mp.v.push_back(mul(rand(shape, dtype, Device::cpu(), &gen), 0.01).to(device));
    mp.decay.push_back(i % 2 ? 1.0 : 0.999);
  }
  return mp;
}
const AdamWStep kStep{1e-2, 0.9, 0.999, 1e-8, 1.0, 1 - std::pow(0.9, 3), 1 - std::pow(0.999, 3)};
}  // namespace

TEST(AdamW, OneFusedUpdateOfManyParametersEqualsOneUpdateEach) {
  NoGradGuard no_grad;
  for (DType dt : {DType::F32, DType::F64}) {
    ManyParams fused = many_params(dt), each = many_params(dt);
    adamw_update_many_(fused.p, fused.g, fused.m, fused.v, fused.decay, kStep);
    for (size_t i = 0; i < each.p.size(); ++i) {
      AdamWStep s = kStep;
      s.decay = each.decay[i];
      adamw_update_(each.p[i], each.g[i], each.m[i], each.v[i], s);
    }
    for (size_t i = 0; i < each.p.size(); ++i) {
      EXPECT_EQ(to_vector<double>(fused.p[i]), to_vector<double>(each.p[i])) << "parameter " << i;
      EXPECT_EQ(to_vector<double>(fused.m[i]), to_vector<double>(each.m[i])) << "first moment " << i;
      EXPECT_EQ(to_vector<double>(fused.v[i]), to_vector<double>(each.v[i])) << "second moment " << i;
    }
  }
  ManyParams mp = many_params(DType::F32);
  std::vector<double> short_decays(mp.decay.begin(), mp.decay.end() - 1);
  EXPECT_THROW(adamw_update_many_(mp.p, mp.g, mp.m, mp.v, short_decays, kStep), Error);
  mp.g[3] = ones({5}, DType::F32);
  EXPECT_THROW(adamw_update_many_(mp.p, mp.g, mp.m, mp.v, mp.decay, kStep), Error);
}

#ifdef MMGRAD_HAVE_CUDA
TEST(AdamW, CudaFusedUpdateMatchesTheCpu) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  for (DType dt : {DType::F32, DType::F64}) {
    ManyParams cpu = many_params(dt), gpu = many_params(dt, Device::cuda(0));
    adamw_update_many_(cpu.p, cpu.g, cpu.m, cpu.v, cpu.decay, kStep);
    adamw_update_many_(gpu.p, gpu.g, gpu.m, gpu.v, gpu.decay, kStep);
    const double tol = dt == DType::F32 ? 1e-6 : 1e-14;
    for (size_t i = 0; i < cpu.p.size(); ++i) {
      const std::vector<double> want = to_vector<double>(cpu.p[i]), got = to_vector<double>(gpu.p[i].to(Device::cpu()));
      ASSERT_EQ(got.size(), want.size());
      for (size_t j = 0; j < want.size(); ++j)
        ASSERT_NEAR(got[j], want[j], tol * (1 + std::abs(want[j]))) << "parameter " << i << " element " << j;
    }
  }
}
#else
TEST(AdamW, CudaFusedUpdateMatchesTheCpu) { GTEST_SKIP() << "this build has no CUDA backend (meson -Dcuda=enabled)"; }
#endif

TEST(AdamW, ParametersWithoutAGradientAreLeftAlone) {
  NamedTensors ps = {{"w", ones({2, 2}, DType::F64).set_requires_grad()}};
  AdamW opt(ps);
  opt.step(0.1);
  EXPECT_EQ(to_vector<double>(ps[0].second), (std::vector<double>{1, 1, 1, 1}));
}

TEST(SGD, MomentumMatchesTheUpdateRule) {
  NamedTensors ps = {{"w", from_data<double>({1.0, 2.0}, {1, 2}).set_requires_grad()}};
  SGD opt(ps, 0.9, 0.01);
  double p[2] = {1.0, 2.0}, buf[2] = {0, 0};
  const double g[3][2] = {{0.5, -1.0}, {0.25, 0.5}, {-1.0, 0.0}};
  for (int t = 0; t < 3; ++t) {
    ps[0].second.set_grad(from_data<double>({g[t][0], g[t][1]}, {1, 2}));
    opt.step(0.1);
    for (int j = 0; j < 2; ++j) {
      double gj = g[t][j] + 0.01 * p[j];
      buf[j] = t == 0 ? gj : 0.9 * buf[j] + gj;
      p[j] -= 0.1 * buf[j];
    }
  }
  std::vector<double> got = to_vector<double>(ps[0].second);
  EXPECT_NEAR(got[0], p[0], 1e-14);
  EXPECT_NEAR(got[1], p[1], 1e-14);
}

TEST(Schedule, WarmupThenCosine) {
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(0, 10, 110, 1.0), 0.1);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(9, 10, 110, 1.0), 1.0);
  EXPECT_DOUBLE_EQ(warmup_cosine_lr(10, 10, 110, 1.0), 1.0);
  EXPECT_NEAR(warmup_cosine_lr(60, 10, 110, 1.0), 0.5, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(110, 10, 110, 1.0, 0.1), 0.1, 1e-12);
  EXPECT_NEAR(warmup_cosine_lr(500, 10, 110, 1.0, 0.1), 0.1, 1e-12);
  for (int s = 11; s < 110; ++s)
    EXPECT_LE(warmup_cosine_lr(s, 10, 110, 1.0), warmup_cosine_lr(s - 1, 10, 110, 1.0));
}

TEST(ClipGradNorm, ScalesToTheMaximumAndReportsTheNorm) {
  NamedTensors ps = {{"a", zeros({2}, DType::F64).set_requires_grad()},
                     {"b", zeros({1}, DType::F64).set_requires_grad()},
                     {"c", zeros({1}, DType::F64).set_requires_grad()}};
  ps[0].second.set_grad(from_data<double>({3, 0}, {2}));
  ps[1].second.set_grad(from_data<double>({4}, {1}));  // c has no gradient
  EXPECT_NEAR(clip_grad_norm(ps, 1.0), 5.0, 1e-12);
  EXPECT_NEAR(to_vector<double>(ps[0].second.grad())[0], 0.6, 1e-6);
  EXPECT_NEAR(to_vector<double>(ps[1].second.grad())[0], 0.8, 1e-6);
  // Below the maximum nothing changes; a NaN norm is reported, not applied.
  EXPECT_NEAR(clip_grad_norm(ps, 10.0), 1.0, 1e-5);
  ps[1].second.set_grad(from_data<double>({std::nan("")}, {1}));
  EXPECT_TRUE(std::isnan(clip_grad_norm(ps, 1.0)));
  EXPECT_NEAR(to_vector<double>(ps[0].second.grad())[0], 0.6, 1e-6);
}
