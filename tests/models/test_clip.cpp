// The towers and the combined model: MODELS.md names, the exact parameter counts of the
// benchmark presets, output shapes, end-of-text pooling.
#include <gtest/gtest.h>

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::nn;

TEST(ClipModel, ClipTinyHasTheSpecifiedParameterCountAndNames) {
  Generator gen(1);
  ClipModel m(preset("clip-tiny"), gen);
  EXPECT_EQ(m.num_parameters(), 2315395);  // MODELS.md, fusion and logit_scale included
  for (const char* name : {
           "vision_model.embeddings.class_embedding", "vision_model.embeddings.patch_embedding.weight",
           "vision_model.embeddings.position_embedding.weight", "vision_model.pre_layrnorm.weight",
           "vision_model.encoder.layers.3.self_attn.q_proj.bias", "vision_model.encoder.layers.0.mlp.fc2.weight",
           "vision_model.post_layernorm.bias", "visual_projection.weight",
           "text_model.embeddings.token_embedding.weight", "text_model.embeddings.position_embedding.weight",
           "text_model.encoder.layers.2.layer_norm1.weight", "text_model.final_layer_norm.bias",
           "text_projection.weight", "logit_scale", "fusion_model.image_proj.weight", "fusion_model.image_proj.bias",
           "fusion_model.encoder.layers.1.layer_norm_cross.weight", "fusion_model.encoder.layers.0.cross_attn.k_proj.weight",
           "fusion_model.itm_head.weight", "fusion_model.itm_head.bias"})
    EXPECT_NO_THROW(m.parameter(name)) << name;
  EXPECT_EQ(m.parameter("vision_model.embeddings.patch_embedding.weight").shape(), (Shape{128, 3, 4, 4}));
  EXPECT_EQ(m.parameter("vision_model.embeddings.position_embedding.weight").shape(), (Shape{65, 128}));
  EXPECT_EQ(m.parameter("visual_projection.weight").shape(), (Shape{128, 128}));
  EXPECT_EQ(m.parameter("fusion_model.itm_head.weight").shape(), (Shape{2, 128}));
  EXPECT_EQ(m.logit_scale.dim(), 0);
  EXPECT_NEAR(item(m.logit_scale), std::log(1 / 0.07), 1e-6);
  EXPECT_THROW(m.parameter("visual_projection.bias"), Error);  // no bias there
}

TEST(ClipModel, ClipB32HasTheSpecifiedParameterCount) {
  Generator gen(2);
  ClipModel m(preset("clip-b32"), gen);
  EXPECT_EQ(m.num_parameters(), 151277313);
  EXPECT_EQ(m.fusion_model, nullptr);
  EXPECT_EQ(m.parameter("text_model.embeddings.token_embedding.weight").shape(), (Shape{49408, 512}));
}

TEST(ClipModel, UnknownPresetNamesTheKnownOnes) {
  EXPECT_MMGRAD_ERROR(preset("clip-huge"), "preset", "clip-tiny, clip-b32");
}

TEST(ClipModel, ForwardShapesAndPooling) {
  NoGradGuard no_grad;
  Generator gen(3);
  ModelConfig c = preset("clip-tiny");
  c.vision_layers = c.text_layers = 1;
  c.caption_layers = 1;
  ClipModel m(c, gen);
  Tensor images = randn({3, 3, 32, 32}, DType::F32, Device::cpu(), &gen);
  Tensor ids = randint(0, 1000, {3, 32}, DType::I64, Device::cpu(), &gen);
  // EOT at positions 5, 31, 0 (and a second EOT later in row 0 that must be ignored).
  std::vector<int64_t> v = to_vector<int64_t>(ids);
  v[0 * 32 + 5] = 1023;
  v[0 * 32 + 9] = 1023;
  v[1 * 32 + 31] = 1023;
  v[2 * 32 + 0] = 1023;
  ids = from_data(v, {3, 32});

  auto vis = m.vision_model.forward(images);
  EXPECT_EQ(vis.last_hidden_state.shape(), (Shape{3, 65, 128}));
  EXPECT_EQ(vis.pooled.shape(), (Shape{3, 128}));
  auto txt = m.text_model.forward(ids);
  EXPECT_EQ(txt.last_hidden_state.shape(), (Shape{3, 32, 128}));
  for (auto [row, pos] : {std::pair<int64_t, int64_t>{0, 5}, {1, 31}, {2, 0}})
    EXPECT_TRUE(allclose(select(txt.pooled, 0, row), select(select(txt.last_hidden_state, 0, row), 0, pos), 0, 0))
        << "row " << row;
  Tensor ei = m.encode_image(images), et = m.encode_text(ids);
  EXPECT_EQ(ei.shape(), (Shape{3, 128}));
  EXPECT_TRUE(allclose(sum(square(et), {1}), ones({3}), 1e-5, 1e-5));
  Tensor fused = m.fusion_model->forward(txt.last_hidden_state, vis.last_hidden_state);
  EXPECT_EQ(fused.shape(), (Shape{3, 32, 128}));
  EXPECT_EQ(m.fusion_model->itm_logits(fused).shape(), (Shape{3, 2}));
  EXPECT_EQ(m.caption_model->forward(txt.last_hidden_state, vis.last_hidden_state).shape(), (Shape{3, 32, 1024}));

  // The text tower is causal: changing a later token leaves earlier states unchanged.
  v[1 * 32 + 20] = (v[1 * 32 + 20] + 1) % 1000;
  auto txt2 = m.text_model.forward(from_data(v, {3, 32}));
  EXPECT_TRUE(allclose(narrow(select(txt2.last_hidden_state, 0, 1), 0, 0, 20),
                       narrow(select(txt.last_hidden_state, 0, 1), 0, 0, 20), 0, 0));
  EXPECT_FALSE(allclose(select(select(txt2.last_hidden_state, 0, 1), 0, 20),
                        select(select(txt.last_hidden_state, 0, 1), 0, 20), 0, 0));
}

TEST(ClipModel, BadInputsAreErrors) {
  NoGradGuard no_grad;
  Generator gen(4);
  ModelConfig c = preset("clip-tiny");
  c.vision_layers = c.text_layers = 1;
  c.fusion_layers = 0;
  ClipModel m(c, gen);
  EXPECT_MMGRAD_ERROR(m.text_model.forward(zeros({2, 40}, DType::I64)), "TextTransformer", "context length");
  EXPECT_MMGRAD_ERROR(m.text_model.forward(zeros({2, 8}, DType::I64)), "TextTransformer", "no end-of-text token");
  EXPECT_MMGRAD_ERROR(m.vision_model.forward(zeros({1, 3, 64, 64})), "VisionTransformer", "image size");
  EXPECT_MMGRAD_ERROR(m.vision_model.forward(zeros({1, 3, 30, 30})), "patch_embed", "dividing");
}

TEST(ClipModel, TiedLmHeadSharesTheTokenEmbedding) {
  Generator gen(5);
  ModelConfig c = preset("clip-tiny");
  c.vision_layers = c.text_layers = 1;
  c.fusion_layers = 0;
  c.caption_layers = 1;
  ModelConfig untied = c;
  c.tie_lm_head = true;
  ClipModel tied(c, gen), separate(untied, gen);
  EXPECT_EQ(separate.num_parameters() - tied.num_parameters(), 1024 * 128);
  EXPECT_THROW(tied.parameter("caption_model.lm_head.weight"), Error);
  EXPECT_NO_THROW(separate.parameter("caption_model.lm_head.weight"));
  // Converting the model keeps the tie (the decoder reads the embedding's slot).
  tied.to(DType::F64);
  NoGradGuard no_grad;
  Tensor h = randn({1, 4, 128}, DType::F64), img = randn({1, 65, 128}, DType::F64);
  EXPECT_EQ(tied.caption_model->forward(h, img).dtype(), DType::F64);
}

TEST(ClipModel, ClipInitialisationScales) {
  Generator gen(6);
  ClipModel m(preset("clip-tiny"), gen);
  auto std_of = [&](const std::string& name) {
    Tensor t = m.parameter(name).to(DType::F64);
    return std::sqrt(item(var(t)));
  };
  const double W = 128, L = 4;
  EXPECT_NEAR(std_of("vision_model.encoder.layers.0.self_attn.q_proj.weight"), std::pow(W, -0.5) * std::pow(2 * L, -0.5), 0.003);
  EXPECT_NEAR(std_of("text_model.encoder.layers.3.self_attn.out_proj.weight"), std::pow(W, -0.5), 0.004);
  EXPECT_NEAR(std_of("text_model.encoder.layers.1.mlp.fc1.weight"), std::pow(2 * W, -0.5), 0.003);
  EXPECT_NEAR(std_of("vision_model.embeddings.class_embedding"), std::pow(W, -0.5), 0.03);
  EXPECT_NEAR(std_of("text_model.embeddings.token_embedding.weight"), 0.02, 0.001);
  EXPECT_NEAR(std_of("visual_projection.weight"), std::pow(W, -0.5), 0.004);
  EXPECT_NEAR(std_of("fusion_model.encoder.layers.0.cross_attn.k_proj.weight"), std::pow(W, -0.5) * std::pow(4.0, -0.5), 0.004);
  EXPECT_EQ(item(sum(abs(m.parameter("vision_model.encoder.layers.0.self_attn.q_proj.bias")))), 0.0);
  EXPECT_EQ(item(sum(m.parameter("text_model.final_layer_norm.weight"))), 128.0);
  // The same seed gives the same model.
  Generator again(6);
  ClipModel m2(preset("clip-tiny"), again);
  EXPECT_TRUE(allclose(m2.parameter("text_projection.weight"), m.parameter("text_projection.weight"), 0, 0));
}

TEST(ClipModel, ClassAttentionIsTheClassTokensSoftmaxRowOverThePatches) {
  ModelConfig c = preset("clip-tiny");
  c.image_size = 16, c.patch_size = 4, c.vision_width = 32, c.vision_heads = 4, c.vision_layers = 2;
  Generator gen(1);
  ClipModel m(c, gen);
  Tensor images = randn({2, 3, 16, 16}, DType::F32, Device::cpu(), &gen);
  const Tensor a = m.vision_model.class_attention(images);
  ASSERT_EQ(a.shape(), (Shape{2, 16}));
  for (int64_t b = 0; b < 2; ++b) {
    const std::vector<float> row = to_vector<float>(select(a, 0, b));
    double total = 0;
    for (float v : row) {
      EXPECT_GE(v, 0.0f);
      total += v;
    }
    EXPECT_LT(total, 1.0);  // the class token keeps some attention for itself
    EXPECT_GT(total, 0.0);
  }
  // A zero query makes every score equal: each of the 17 tokens gets 1/17.
  NoGradGuard no_grad;
  auto& q = m.vision_model.encoder.layers.back()->self_attn.q_proj;
  fill_(q.weight, 0);
  fill_(q.bias, 0);
  for (float v : to_vector<float>(m.vision_model.class_attention(images))) EXPECT_NEAR(v, 1.0 / 17, 1e-6);
}
