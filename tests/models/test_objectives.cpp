// Combined objectives: the weighted total, gradients reaching every tower that takes part,
// SigLIP's extra parameter, and configuration errors.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "core/host_transfer_ban.h"
#include "models/clip.h"
#include "models/objectives.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::nn;

namespace {
ModelConfig small_config() {
  ModelConfig c = preset("clip-tiny");
  c.image_size = 16;
  c.vision_width = c.text_width = c.embed_dim = 32;
  c.vision_layers = c.text_layers = 1;
  c.vision_heads = c.text_heads = 2;
  c.context_length = 8;
  c.vocab_size = 64;
  c.eot_token_id = 63;
  c.fusion_layers = 1;
  c.caption_layers = 1;
  return c;
}

Tensor token_ids(int64_t B, const ModelConfig& c, Generator& gen) {
  std::vector<int64_t> v = to_vector<int64_t>(randint(0, c.vocab_size - 1, {B, c.context_length}, DType::I64, Device::cpu(), &gen));
  for (int64_t b = 0; b < B; ++b) v[b * c.context_length + 2 + b % 5] = c.eot_token_id;
  return from_data(v, {B, c.context_length});
}
}  // namespace

TEST(Objectives, TotalIsTheWeightedSumAndEveryTowerGetsGradients) {
  Generator gen(1);
  ModelConfig c = small_config();
  ClipModel model(c, gen);
  Tensor images = randn({4, 3, 16, 16}, DType::F32, Device::cpu(), &gen);
  Tensor ids = token_ids(4, c, gen);
  Losses l = compute_losses(model, images, ids, {1.0, 0.5, 0.25, true}, gen);
  ASSERT_EQ(l.parts.size(), 3u);
  EXPECT_EQ(l.parts[0].first, "clip");
  EXPECT_EQ(l.parts[1].first, "itm");
  EXPECT_EQ(l.parts[2].first, "caption");
  EXPECT_NEAR(item(l.total), item(l.parts[0].second) + 0.5 * item(l.parts[1].second) + 0.25 * item(l.parts[2].second), 1e-5);
  l.total.backward();
  for (const auto& [name, p] : model.named_parameters())
    EXPECT_TRUE(p.grad().defined()) << name << " received no gradient";
}

TEST(Objectives, UnusedHeadsGetNoGradientAndCyclicNegativesWork) {
  Generator gen(2);
  ModelConfig c = small_config();
  ClipModel model(c, gen);
  Tensor images = randn({3, 3, 16, 16}, DType::F32, Device::cpu(), &gen);
  Losses l = compute_losses(model, images, token_ids(3, c, gen), {1.0, 1.0, 0.0, false}, gen);
  l.total.backward();
  EXPECT_TRUE(model.parameter("fusion_model.itm_head.weight").grad().defined());
  EXPECT_FALSE(model.parameter("caption_model.lm_head.weight").grad().defined());
}

TEST(Objectives, SiglipAddsABiasParameter) {
  Generator gen(3);
  ModelConfig c = small_config();
  ModelConfig s = c;
  s.contrastive = "siglip";
  ClipModel clip(c, gen), sig(s, gen);
  EXPECT_EQ(sig.num_parameters(), clip.num_parameters() + 1);
  EXPECT_NEAR(item(sig.logit_scale), std::log(10.0), 1e-6);
  EXPECT_EQ(item(sig.parameter("logit_bias")), -10.0);
  Losses l = compute_losses(sig, randn({3, 3, 16, 16}), token_ids(3, s, gen), {1.0, 0, 0, true}, gen);
  EXPECT_EQ(l.parts[0].first, "siglip");
  l.total.backward();
  EXPECT_TRUE(sig.logit_bias.grad().defined());
  s.contrastive = "triplet";
  EXPECT_MMGRAD_ERROR(ClipModel(s, gen), "ClipModel", "unknown contrastive objective 'triplet'");
}

TEST(Objectives, MissingHeadsAndZeroWeightsAreErrors) {
  Generator gen(4);
  ModelConfig c = small_config();
  c.fusion_layers = 0;
  c.caption_layers = 0;
  ClipModel model(c, gen);
  Tensor images = randn({2, 3, 16, 16});
  Tensor ids = token_ids(2, c, gen);
  EXPECT_MMGRAD_ERROR(compute_losses(model, images, ids, {1.0, 1.0, 0.0, true}, gen), "objectives", "fusion layers");
  EXPECT_MMGRAD_ERROR(compute_losses(model, images, ids, {1.0, 0.0, 1.0, true}, gen), "objectives", "caption decoder");
  EXPECT_MMGRAD_ERROR(compute_losses(model, images, ids, {0.0, 0.0, 0.0, true}, gen), "objectives", "weight 0");
}

// ---- a step that may be recorded as a CUDA graph (train/step_graph.h) reads nothing back and
// uploads nothing: checked here on the CPU, where HostTransferBan refuses the same things a
// capture would.

TEST(Objectives, TheStepReadsNothingBackWithEveryObjective) {
  Generator gen(5);
  ModelConfig c = small_config();
  for (const char* contrastive : {"clip", "siglip"}) {
    c.contrastive = contrastive;
    ClipModel model(c, gen);
    Tensor images = randn({6, 3, 16, 16}, DType::F32, Device::cpu(), &gen);
    Tensor ids = token_ids(6, c, gen);
    for (bool hard : {true, false}) {
      SCOPED_TRACE(std::string(contrastive) + (hard ? " hard negatives" : " cyclic negatives"));
      const ObjectiveWeights w{1.0, 0.5, 0.25, hard};
      const std::vector<int64_t> groups = hard ? std::vector<int64_t>{0, 0, 1, 2, 2, 3} : std::vector<int64_t>{};
      Generator draws(9), same_draws(9);
      const LossInputs in = make_loss_inputs(images, ids, w, draws, groups);
      EXPECT_EQ(in.negative_draws.defined(), hard);
      Losses banned;
      {
        HostTransferBan ban("this test's step");
        banned = compute_losses(model, in, w);
        banned.total.backward();
      }
      // The same step through the convenience overload (draws from the generator inside):
      // the same draws, so the same losses.
      Losses plain = compute_losses(model, images, ids, w, same_draws, groups);
      EXPECT_EQ(item(banned.total), item(plain.total));
      EXPECT_EQ(draws.draws(), same_draws.draws());
      for (const auto& [name, p] : model.named_parameters()) {
        EXPECT_TRUE(p.grad().defined()) << name;
        p.set_grad(Tensor());
      }
    }
  }
}

TEST(Objectives, AHostReadInsideTheBanIsAClearError) {
  Generator gen(6);
  ModelConfig c = small_config();
  ClipModel model(c, gen);
  Tensor images = randn({3, 3, 16, 16}, DType::F32, Device::cpu(), &gen);
  Tensor ids = token_ids(3, c, gen);
  HostTransferBan ban("a recorded step");
  // The convenience overload draws and uploads the negatives' uniforms: refused, by name.
  EXPECT_MMGRAD_ERROR(compute_losses(model, images, ids, {1.0, 1.0, 0.0, true}, gen), "from_data",
                      "inside a recorded step");
}
