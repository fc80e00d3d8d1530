// Checkpoints: a resumed run continues bit for bit; mismatches are reported by name.
#include <gtest/gtest.h>

#include <algorithm>
#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
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

// Found by fuzz/fuzz_checkpoint: a file whose tensors matched but whose metadata was
// incomplete was refused only after the weights had been copied in.
TEST(Checkpoint, RefusedFilesChangeNothingEvenWhenOnlyTheMetadataIsBad) {
  TrainingRun saved;
  saved.train_step();
  NamedTensors tensors;
  for (const auto& [name, t] : saved.model.named_parameters()) tensors.emplace_back("model." + name, t);
  for (const auto& [name, t] : saved.opt.state()) tensors.emplace_back("optim." + name, t);
  const std::string path = mmtest::temp_path("no_state.safetensors");
  save_safetensors(path, tensors, {{"format", "mmgrad-checkpoint 1"}, {"optimizer_steps", "1"}});
  TrainingRun fresh;
  const Tensor before = fresh.model.fc1.weight.clone();
  EXPECT_MMGRAD_ERROR(load_checkpoint(path, fresh.model, fresh.opt), "checkpoint", path, "metadata");
  EXPECT_MMGRAD_ERROR(load_model_weights(path, fresh.model), "checkpoint", path, "metadata");
  EXPECT_TRUE(allclose(fresh.model.fc1.weight, before, 0, 0));
  EXPECT_EQ(fresh.opt.steps(), 0);
}

// Training never saves non-finite weights (it skips such steps), so NaN or Inf in a file is
// damage; integer values where the model has floats are a different file's tensors.
TEST(Checkpoint, NaNOrIntegerTensorsAreRefusedByName) {
  TrainingRun run;
  run.train_step();
  {
    NoGradGuard no_grad;
    Tensor w = run.model.fc2.bias;
    copy_(w, full(w.shape(), std::nan("")));
  }
  const std::string path = mmtest::temp_path("nan.safetensors");
  save_checkpoint(path, run.model, run.opt, run.state());  // a valid checksum over the NaN
  TrainingRun fresh;
  const Tensor before = fresh.model.fc2.bias.clone();
  EXPECT_MMGRAD_ERROR(load_checkpoint(path, fresh.model, fresh.opt), "checkpoint", path,
                      "model.fc2.bias: holds NaN or infinite values");
  EXPECT_TRUE(allclose(fresh.model.fc2.bias, before, 0, 0));

  TrainingRun other;
  const std::string ints = mmtest::temp_path("ints.safetensors");
  NamedTensors tensors;
  for (const auto& [name, t] : other.model.named_parameters())
    tensors.emplace_back("model." + name, name == "fc1.weight" ? t.to(DType::I64) : t);
  save_safetensors(ints, tensors, {{"format", "mmgrad-checkpoint 1"}, {"step", "0"}, {"optimizer_steps", "0"},
                                   {"rng_seed", "0"}, {"rng_draws", "0"}, {"data_position", "0"}, {"config", "{}"}});
  EXPECT_MMGRAD_ERROR(load_model_weights(ints, fresh.model), "checkpoint", ints,
                      "model.fc1.weight: checkpoint has i64 values, the model f32");
}

TEST(Checkpoint, ACorruptedFileIsDetectedAndTheFolderResumesFromTheNewestGoodOne) {
  namespace fs = std::filesystem;
  const std::string dir = mmtest::temp_path("rotating");
  fs::remove_all(dir);
  fs::create_directories(dir);
  TrainingRun run;
  for (int i = 0; i < 5; ++i) {
    run.train_step();
    save_rotating_checkpoint(dir, run.model, run.opt, run.state(), /*keep=*/3);
  }
  // The newest three step files are kept; checkpoint.safetensors is the newest.
  std::vector<std::string> names;
  for (const auto& e : fs::directory_iterator(dir)) names.push_back(e.path().filename().string());
  std::sort(names.begin(), names.end());
  EXPECT_EQ(names, (std::vector<std::string>{"checkpoint-00000003.safetensors", "checkpoint-00000004.safetensors",
                                             "checkpoint-00000005.safetensors", "checkpoint.safetensors"}));
  TrainingRun check;
  EXPECT_EQ(load_checkpoint(dir + "/checkpoint.safetensors", check.model, check.opt).step, 5);

  // Flip one byte in the newest file's tensor data (its last byte): the checksum catches it.
  const std::string newest = dir + "/checkpoint-00000005.safetensors";
  {
    std::fstream f(newest, std::ios::in | std::ios::out | std::ios::binary);
    f.seekg(-1, std::ios::end);
    char c = 0;
    f.get(c);
    f.seekp(-1, std::ios::end);
    f.put(static_cast<char>(c ^ 0x20));
  }
  TrainingRun victim;
  const auto before = to_vector<float>(victim.model.named_parameters()[0].second);
  try {
    load_checkpoint(newest, victim.model, victim.opt);
    FAIL() << "a corrupted checkpoint loaded";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("is corrupt"), std::string::npos) << e.what();
  }
  EXPECT_EQ(to_vector<float>(victim.model.named_parameters()[0].second), before);  // nothing changed
  // checkpoint.safetensors is a hard link to the same bytes, so it is corrupt too; the
  // folder resumes from step 4.
  std::vector<std::string> warnings;
  const std::string good = newest_good_checkpoint(dir, [&](const std::string& w) { warnings.push_back(w); });
  EXPECT_EQ(fs::path(good).filename().string(), "checkpoint-00000004.safetensors");
  ASSERT_EQ(warnings.size(), 1u);
  EXPECT_NE(warnings[0].find("checkpoint-00000005"), std::string::npos);
  TrainingRun resumed;
  EXPECT_EQ(load_checkpoint(good, resumed.model, resumed.opt).step, 4);
}
