// Training with the step recorded as a CUDA graph (cuda_graph = true, train/step_graph.h)
// against the same run done eagerly: the same losses step by step and the same parameters at
// the end, with one micro-batch and with several; a batch of another shape is a clear error.
// Without a GPU (or CUDA in the build) the GPU tests skip and say why.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "core/json.h"
#include "models/clip.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"
#include "tests/train/tiny_config.h"
#include "train/step_graph.h"
#include "train/trainer.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

using namespace mmgrad;
using namespace mmgrad::train;

namespace {

TEST(StepGraph, NeedsCudaInTheBuildOrSaysSo) {
  if (cuda_graphs_built()) GTEST_SKIP() << "this build has CUDA: the GPU tests below cover it";
  Generator gen(1);
  nn::ClipModel model(nn::preset("clip-tiny"), gen);
  EXPECT_MMGRAD_ERROR(StepGraph(model, nn::ObjectiveWeights{}), "cuda_graph", "no CUDA");
}

#ifdef MMGRAD_HAVE_CUDA

RunConfig tiny_gpu_config(int64_t accum_steps) {
  RunConfig c = mmtest::tiny_training_config();
  c.model.vision_width = c.model.text_width = c.model.embed_dim = 32;
  c.model.vision_layers = c.model.text_layers = 2;
  c.accum_steps = accum_steps, c.steps = 7, c.warmup_steps = 2;
  c.log_every = 7, c.checkpoint_every = 7;
  c.device = "cuda";
  return c;
}

// Samples that depend only on their position; groups make the hard negatives skip pairs.
Batch sample_batch(int64_t first, int64_t count, const RunConfig& c) {
  std::vector<Tensor> per_sample;
  std::vector<int64_t> ids, groups;
  for (int64_t b = 0; b < count; ++b) {
    Generator g(500 + static_cast<uint64_t>(first + b));
    per_sample.push_back(randn({1, 3, c.model.image_size, c.model.image_size}, DType::F32, Device::cpu(), &g));
    for (int64_t t = 0; t < c.model.context_length; ++t)
      ids.push_back(t == 0 ? 17 : t < 3 + (first + b) % 4 ? ((first + b) * 5 + t * 3) % 17 : t == 3 + (first + b) % 4 ? 18 : 19);
    groups.push_back((first + b) / 2);
  }
  return {concat(per_sample, 0), from_data(ids, {count, c.model.context_length}), groups};
}

struct RunResult {
  std::vector<double> losses;
  std::vector<float> parameters;
};

RunResult train_tiny(const RunConfig& c, const std::string& name) {
  const std::string dir = mmtest::temp_path(name);
  std::filesystem::remove_all(dir);
  std::filesystem::create_directories(dir);
  Generator init(c.seed);
  nn::ClipModel model(c.model, init);
  model.to(Device::cuda(0));
  TrainOptions o;
  o.run_dir = dir;
  o.print_steps = false;
  train_model(model, c, [c](int64_t f, int64_t n) { return sample_batch(f, n, c); }, o);
  RunResult r;
  std::ifstream in(metrics_path(dir));
  std::string line;
  while (std::getline(in, line)) r.losses.push_back(json::Value::parse(line).find("loss")->as_number("loss"));
  for (const auto& [pname, p] : model.named_parameters())
    for (float v : to_vector<float>(p)) r.parameters.push_back(v);
  return r;
}

void expect_same_training(int64_t accum_steps) {
  RunConfig eager = tiny_gpu_config(accum_steps), graphed = eager;
  graphed.cuda_graph = true;
  const RunResult a = train_tiny(eager, "step_graph_eager");
  const RunResult b = train_tiny(graphed, "step_graph_replayed");
  ASSERT_EQ(a.losses.size(), 7u);
  ASSERT_EQ(b.losses.size(), 7u);
  // The same kernels in the same order; only the scatter-adds' atomics may round apart.
  for (size_t s = 0; s < a.losses.size(); ++s)
    EXPECT_NEAR(b.losses[s], a.losses[s], 1e-4 * std::abs(a.losses[s])) << "step " << s + 1;
  ASSERT_EQ(a.parameters.size(), b.parameters.size());
  double worst = 0;
  for (size_t i = 0; i < a.parameters.size(); ++i) worst = std::max(worst, std::abs(double(a.parameters[i]) - b.parameters[i]));
  EXPECT_LT(worst, 1e-4) << "largest parameter difference after 7 steps (5 of them replays)";
}

TEST(StepGraph, ReplayedStepsTrainLikeEagerSteps) {
  MMGRAD_REQUIRE_GPU();
  expect_same_training(1);
}

TEST(StepGraph, ReplayedStepsWithMicroBatchesTrainLikeEagerSteps) {
  MMGRAD_REQUIRE_GPU();
  expect_same_training(2);
}

TEST(StepGraph, ABatchOfAnotherShapeIsAClearError) {
  MMGRAD_REQUIRE_GPU();
  RunConfig c = tiny_gpu_config(1);
  Generator init(1), draws(2);
  nn::ClipModel model(c.model, init);
  model.to(Device::cuda(0));
  const nn::ObjectiveWeights w{1.0, 1.0, 1.0, true};
  StepGraph graph(model, w);
  auto inputs = [&](int64_t n) {
    Batch b = sample_batch(0, n, c);
    return nn::make_loss_inputs(b.images.to(Device::cuda(0)), b.ids.to(Device::cuda(0)), w, draws, b.groups);
  };
  const StepLosses first = graph.run({inputs(8)});
  EXPECT_TRUE(graph.recorded());
  EXPECT_TRUE(std::isfinite(item(first.total)));
  EXPECT_EQ(first.parts.size(), 3u);
  mmtest::expect_error([&] { graph.run({inputs(6)}); }, "cuda_graph", {"replays fixed shapes"});
  mmtest::expect_error([&] { graph.run({inputs(8), inputs(8)}); }, "cuda_graph", {"2 micro-batches", "recorded with 1"});
  // Still good for the right shape.
  EXPECT_TRUE(std::isfinite(item(graph.run({inputs(8)}).total)));
}
#endif

}  // namespace
