// Anomaly mode: the first non-finite value is reported where it is made — forward or
// backward, op, operand shapes and the module of the nearest parameter — and nothing is
// checked or reported when the mode is off.
#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "autograd/anomaly.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "tests/core/test_util.h"
#include "tests/models/tiny_clip.h"

using namespace mmgrad;

namespace {

std::string error_of(const std::function<void()>& fn) {
  try {
    fn();
  } catch (const Error& e) {
    return e.what();
  }
  return "";
}

TEST(Anomaly, ForwardNamesTheOpThatMadeTheFirstNonFiniteValue) {
  Tensor x = mmtest::leaf({1.0, -2.0, 3.0}, {3});
  // Off: log of a negative number is NaN and nothing complains.
  EXPECT_TRUE(std::isnan(to_vector<double>(log(x).detach())[1]));
  autograd::DetectAnomaly on;
  const std::string e = error_of([&] { sum(exp(log(x))); });
  EXPECT_NE(e.find("forward of 'log'"), std::string::npos) << e;
  EXPECT_NE(e.find("from finite inputs"), std::string::npos) << e;
  EXPECT_NE(e.find("f64[3]"), std::string::npos) << e;
}

TEST(Anomaly, BackwardNamesTheNodeWhoseGradientIsNotFinite) {
  autograd::DetectAnomaly on;
  Tensor x = mmtest::leaf({0.0, 4.0}, {2});
  Tensor y = sum(sqrt(x));  // finite forward; d sqrt(x)/dx at 0 is infinite
  const std::string e = error_of([&] { y.backward(); });
  EXPECT_NE(e.find("backward of 'sqrt'"), std::string::npos) << e;
  EXPECT_NE(e.find("gradient: f64[2]"), std::string::npos) << e;
}

TEST(Anomaly, TheModuleOfTheNearestParameterIsNamed) {
  const nn::ModelConfig c = mmtest::tiny_clip_config(16, 1, 0);
  Generator gen(3);
  nn::ClipModel model(c, gen);
  Tensor images = randn({4, 3, 16, 16}, DType::F32, Device::cpu(), &gen);
  const Tensor tokens = mmtest::tiny_captions(4, [](int64_t) { return 6; });
  {
    NoGradGuard no_grad;  // a poisoned weight: inf in the text MLP's first layer
    Tensor w = model.parameter("text_model.encoder.layers.0.mlp.fc1.weight");
    fill_(w, std::numeric_limits<double>::infinity());
  }
  autograd::DetectAnomaly on(model.named_parameters());
  Generator neg(1);
  const std::string e = error_of([&] { nn::compute_losses(model, images, tokens, {}, neg); });
  // The fused LayerNorm + MLP op holds layer_norm2's and the MLP's parameters: their layer.
  EXPECT_NE(e.find("in module 'text_model.encoder.layers.0'"), std::string::npos) << e;
  EXPECT_NE(e.find("forward of"), std::string::npos) << e;
}

}  // namespace
