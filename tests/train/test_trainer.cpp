// The training loop: metrics, checkpoints and exact resume, gradient accumulation, the
// logit_scale clamp and non-finite steps.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/json.h"
#include "tests/core/test_util.h"
#include "tests/train/tiny_config.h"
#include "train/checkpoint.h"
#include "train/trainer.h"

using namespace mmgrad;
using namespace mmgrad::train;

namespace {

RunConfig tiny_config() {
  RunConfig c = mmtest::tiny_training_config();
  c.steps = 6, c.warmup_steps = 2;
  c.log_every = 2, c.checkpoint_every = 3;
  return c;
}

// Deterministic data that depends only on the sample position. Captions all have the same
// length (EOT at position 5), so per-sample losses average the same over any split.
Batch synthetic_batch(int64_t first, int64_t count, const RunConfig& c) {
  std::vector<Tensor> per_sample;
  for (int64_t b = 0; b < count; ++b) {
    Generator g(1000 + static_cast<uint64_t>(first + b));
    per_sample.push_back(randn({1, 3, c.model.image_size, c.model.image_size}, DType::F32, Device::cpu(), &g));
  }
  Tensor images = concat(per_sample, 0);
  std::vector<int64_t> ids;
  for (int64_t b = 0; b < count; ++b)
    for (int64_t t = 0; t < c.model.context_length; ++t)
      ids.push_back(t == 0 ? 17 : t < 5 ? ((first + b) * 3 + t * 7) % 17 : t == 5 ? 18 : 19);
  return {images, from_data(ids, {count, c.model.context_length}), {}};
}

std::string fresh_dir(const std::string& name) {
  const std::string d = mmtest::temp_path(name);
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

std::vector<json::Value> read_metrics(const std::string& dir) {
  std::ifstream in(metrics_path(dir));
  std::vector<json::Value> out;
  std::string line;
  while (std::getline(in, line)) out.push_back(json::Value::parse(line));
  return out;
}

std::vector<float> all_parameters(const nn::ClipModel& m) {
  std::vector<float> out;
  for (const auto& [name, p] : m.named_parameters())
    for (float v : to_vector<float>(p)) out.push_back(v);
  return out;
}

struct TinyRun {
  RunConfig config;
  Generator init;
  nn::ClipModel model;
  explicit TinyRun(const RunConfig& c) : config(c), init(c.seed), model(c.model, init) {}
  TrainSummary train(const std::string& dir, const std::string& resume = "", int64_t stop_after = 0) {
    TrainOptions o;
    o.run_dir = dir;
    o.resume = resume;
    o.stop_after = stop_after;
    o.print_steps = false;
    const RunConfig c = config;
    return train_model(model, config, [c](int64_t f, int64_t n) { return synthetic_batch(f, n, c); }, o);
  }
};

}  // namespace

TEST(Trainer, WritesOneMetricsLinePerStepAndACheckpoint) {
  const std::string dir = fresh_dir("trainer_metrics");
  TinyRun run(tiny_config());
  TrainSummary s = run.train(dir);
  EXPECT_EQ(s.first_step, 0);
  EXPECT_EQ(s.last_step, 6);
  EXPECT_FALSE(s.interrupted);
  EXPECT_TRUE(std::filesystem::exists(checkpoint_path(dir)));
  const auto lines = read_metrics(dir);
  ASSERT_EQ(lines.size(), 6u);
  for (size_t i = 0; i < lines.size(); ++i) {
    EXPECT_EQ(lines[i].find("step")->as_int("step"), static_cast<int64_t>(i) + 1);
    for (const char* key : {"loss", "clip", "itm", "caption", "lr", "grad_norm", "ms", "samples_per_s", "gflops",
                            "peak_mem_mib"})
      ASSERT_NE(lines[i].find(key), nullptr) << key;
    EXPECT_GT(lines[i].find("gflops")->as_number(""), 0);       // matmuls were counted
    EXPECT_GT(lines[i].find("peak_mem_mib")->as_number(""), 0);
    const double parts = lines[i].find("clip")->as_number("") + lines[i].find("itm")->as_number("") +
                         lines[i].find("caption")->as_number("");
    EXPECT_NEAR(lines[i].find("loss")->as_number(""), parts, 1e-4);  // weights are all 1
  }
  // TensorBoard events beside the metrics.
  bool events = false;
  for (const auto& e : std::filesystem::directory_iterator(dir))
    events |= e.path().filename().string().rfind("events.out.tfevents.", 0) == 0 && std::filesystem::file_size(e.path()) > 0;
  EXPECT_TRUE(events);
  // Warmup then cosine: step 1 at lr/2, step 2 at lr, then decaying.
  EXPECT_NEAR(lines[0].find("lr")->as_number(""), 0.5e-2, 1e-12);
  EXPECT_NEAR(lines[1].find("lr")->as_number(""), 1e-2, 1e-12);
  EXPECT_LT(lines[5].find("lr")->as_number(""), lines[2].find("lr")->as_number(""));
}

TEST(Trainer, ResumeContinuesExactlyAndKeepsTheMetricsOfEarlierSteps) {
  const std::string straight_dir = fresh_dir("trainer_straight"), split_dir = fresh_dir("trainer_split");
  RunConfig c = tiny_config();
  c.accum_steps = 2;  // resume must also be exact with micro-batches and hard negatives
  TinyRun straight(c);
  straight.train(straight_dir);

  TinyRun first(c);
  TrainSummary s1 = first.train(split_dir, "", /*stop_after=*/4);
  EXPECT_EQ(s1.last_step, 4);
  EXPECT_TRUE(s1.interrupted);
  // A fresh model resumes from the checkpoint written at the stop.
  TinyRun second(c);
  TrainSummary s2 = second.train(split_dir, checkpoint_path(split_dir));
  EXPECT_EQ(s2.first_step, 4);
  EXPECT_EQ(s2.last_step, 6);
  EXPECT_EQ(all_parameters(second.model), all_parameters(straight.model));

  const auto a = read_metrics(straight_dir), b = read_metrics(split_dir);
  ASSERT_EQ(b.size(), 6u);
  for (size_t i = 0; i < 6; ++i) EXPECT_EQ(a[i].find("loss")->as_number(""), b[i].find("loss")->as_number("")) << i;

  // Resuming a finished run asks for more steps.
  TinyRun third(c);
  try {
    third.train(split_dir, checkpoint_path(split_dir));
    FAIL() << "resuming at the last step should fail";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("raise steps"), std::string::npos) << e.what();
  }
}

TEST(Trainer, AccumulatedMicroBatchesGiveTheGradientOfTheWholeBatch) {
  // Caption loss only: a mean over equally long captions, so it splits exactly.
  RunConfig c = tiny_config();
  c.w_contrastive = 0, c.w_itm = 0, c.w_caption = 1;
  c.steps = 2, c.optimizer = "sgd", c.momentum = 0, c.weight_decay = 0, c.grad_clip = 0;
  RunConfig accumulated = c;
  accumulated.accum_steps = 4;
  TinyRun whole(c), parts(accumulated);
  whole.train(fresh_dir("trainer_whole"));
  parts.train(fresh_dir("trainer_parts"));
  const auto w = all_parameters(whole.model), p = all_parameters(parts.model);
  ASSERT_EQ(w.size(), p.size());
  double worst = 0;
  for (size_t i = 0; i < w.size(); ++i) worst = std::max(worst, static_cast<double>(std::abs(w[i] - p[i])));
  EXPECT_LT(worst, 1e-5);
  // And they did train: the parameters moved.
  TinyRun untouched(c);
  const auto u = all_parameters(untouched.model);
  double moved = 0;
  for (size_t i = 0; i < w.size(); ++i) moved = std::max(moved, static_cast<double>(std::abs(w[i] - u[i])));
  EXPECT_GT(moved, 1e-3);
}

TEST(Trainer, LogitScaleIsClampedToLn100AfterEachStep) {
  RunConfig c = tiny_config();
  c.steps = 1;
  TinyRun run(c);
  {
    NoGradGuard no_grad;
    fill_(run.model.logit_scale, 6.0);
  }
  run.train(fresh_dir("trainer_clamp"));
  EXPECT_NEAR(item(run.model.logit_scale), std::log(100.0), 1e-6);
}

TEST(Trainer, NonFiniteStepsAreSkippedThenStopTheRunWithTheCheckpointIntact) {
  const std::string dir = fresh_dir("trainer_nan");
  RunConfig c = tiny_config();
  c.steps = 10, c.checkpoint_every = 2, c.max_bad_steps = 3;
  TinyRun run(c);
  // From sample position 32 (step 5) on, the images are NaN.
  const RunConfig cc = c;
  TrainOptions o;
  o.run_dir = dir;
  o.print_steps = false;
  auto source = [cc](int64_t f, int64_t n) {
    Batch b = synthetic_batch(f, n, cc);
    if (f >= 32) b.images = full_like(b.images, NAN);
    return b;
  };
  try {
    train_model(run.model, c, source, o);
    FAIL() << "the run should stop";
  } catch (const Error& e) {
    const std::string msg = e.what();
    EXPECT_NE(msg.find("3 steps in a row"), std::string::npos) << msg;
    EXPECT_NE(msg.find(checkpoint_path(dir)), std::string::npos) << msg;
  }
  // The checkpoint (written at step 6, during the streak) is intact and loads; the skipped
  // steps did not touch the model.
  TinyRun reloaded(c);
  TrainState st = load_model_weights(checkpoint_path(dir), reloaded.model);
  EXPECT_EQ(st.step, 6);
  EXPECT_EQ(all_parameters(reloaded.model), all_parameters(run.model));
  const auto lines = read_metrics(dir);
  ASSERT_EQ(lines.size(), 7u);  // the failing step's line included
  for (size_t i = 0; i < 7; ++i) EXPECT_EQ(lines[i].find("skipped")->kind(), json::Value::Kind::Bool);
  EXPECT_NE(lines[3].find("loss"), nullptr);
  EXPECT_EQ(lines[5].find("loss"), nullptr);  // skipped steps have no loss
}

// The recompute key sets recompute_in_backward for the run (what backward sees is observed
// from inside the loop, through the batch source) and the previous setting comes back after;
// keeping or recomputing the intermediates gives the same loss and gradient norm up to
// rounding (later steps are not compared: AdamW turns rounding noise in near-zero gradients
// into whole-lr differences).
TEST(Trainer, RecomputeKeyHoldsForTheRunAndIsRestored) {
  double loss[2], grad_norm[2];
  for (const bool recompute : {true, false}) {
    RunConfig c = tiny_config();
    c.recompute = recompute;
    c.steps = 2;
    Generator init(c.seed);
    nn::ClipModel model(c.model, init);
    TrainOptions o;
    o.run_dir = fresh_dir(recompute ? "trainer_recompute_on" : "trainer_recompute_off");
    o.print_steps = false;
    std::vector<bool> seen;
    RecomputeGuard before(!recompute);  // the opposite, so the run must change it
    train_model(model, c, [&](int64_t f, int64_t n) {
      seen.push_back(recompute_in_backward());
      return synthetic_batch(f, n, c);
    }, o);
    ASSERT_EQ(seen.size(), 2u);
    for (bool s : seen) EXPECT_EQ(s, recompute);
    EXPECT_EQ(recompute_in_backward(), !recompute);  // restored
    const auto lines = read_metrics(o.run_dir);
    ASSERT_EQ(lines.size(), 2u);
    loss[recompute ? 0 : 1] = lines[0].find("loss")->as_number("");
    grad_norm[recompute ? 0 : 1] = lines[0].find("grad_norm")->as_number("");
  }
  EXPECT_NEAR(loss[0], loss[1], 1e-5 * std::fabs(loss[0]));
  EXPECT_NEAR(grad_norm[0], grad_norm[1], 1e-4 * grad_norm[0]);
  EXPECT_GT(grad_norm[0], 0);
}
