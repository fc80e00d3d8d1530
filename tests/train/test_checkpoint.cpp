// Checkpoints: a resumed run continues bit for bit; mismatches are reported by name.
#include <gtest/gtest.h>

#include <filesystem>

#include "autograd/ops.h"
#include "models/layers.h"
#include "tests/core/test_util.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

using namespace mmgrad;
using namespace mmgrad::train;

namespace {

// A small model and a deterministic training step whose data depends on the step number.
struct TrainingRun {
  Generator init{42};
  nn::Mlp model{8, 16, nn::Activation::Gelu, init};
  AdamW opt{model.named_parameters(), 0.1};
  Generator data{7};
  int64_t step = 0;

  void train_step() {
    opt.zero_grad();
    Tensor x = randn({4, 8}, DType::F32, Device::cpu(), &data);
    sum(square(model.forward(x))).backward();
    opt.step(1e-2);
    ++step;
  }
  TrainState state() const { return {step, data.seed(), data.draws(), step * 4, "{\"preset\":\"test\"}"}; }
};
}  // namespace

TEST(Checkpoint, ResumingContinuesBitForBit) {
  TrainingRun straight;
  for (int i = 0; i < 6; ++i) straight.train_step();

  TrainingRun first;
  for (int i = 0; i < 3; ++i) first.train_step();
  std::string path = mmtest::temp_path("run.safetensors");
  save_checkpoint(path, first.model, first.opt, first.state());

  TrainingRun resumed;  // fresh weights, fresh optimizer, fresh data generator
  TrainState s = load_checkpoint(path, resumed.model, resumed.opt);
  EXPECT_EQ(s.step, 3);
  EXPECT_EQ(s.data_position, 12);
  EXPECT_EQ(s.config, "{\"preset\":\"test\"}");
  EXPECT_EQ(resumed.opt.steps(), 3);
  resumed.step = s.step;
  resumed.data.manual_seed(s.rng_seed);
  resumed.data.set_draws(s.rng_draws);
  for (int i = 0; i < 3; ++i) resumed.train_step();

  auto a = straight.model.named_parameters(), b = resumed.model.named_parameters();
  for (size_t i = 0; i < a.size(); ++i)
    EXPECT_TRUE(allclose(a[i].second, b[i].second, 0, 0)) << a[i].first << " differs after resuming";
}

TEST(Checkpoint, MismatchesAreListedAndNothingIsChanged) {
  TrainingRun run;
  std::string path = mmtest::temp_path("mlp.safetensors");
  save_checkpoint(path, run.model, run.opt, run.state());
  Generator gen(1);
  nn::Mlp wider(8, 32, nn::Activation::Gelu, gen);
  AdamW opt(wider.named_parameters());
  Tensor before = wider.fc1.weight.clone();
  EXPECT_MMGRAD_ERROR(load_checkpoint(path, wider, opt), "checkpoint", "does not match the model",
                      "model.fc1.weight: checkpoint has [16, 8], the model [32, 8]");
  EXPECT_TRUE(allclose(wider.fc1.weight, before, 0, 0));
  nn::Linear other(8, 8, true, gen);
  AdamW opt2(other.named_parameters());
  EXPECT_MMGRAD_ERROR(load_checkpoint(path, other, opt2), "checkpoint", "missing model.weight", "unexpected model.fc1.weight");
  // A plain safetensors file is not a checkpoint.
  save_safetensors(path, {{"x", ones({1})}});
  EXPECT_MMGRAD_ERROR(load_checkpoint(path, run.model, run.opt), "checkpoint", "not an mmgrad checkpoint");
}
