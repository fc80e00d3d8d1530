#include "models/clip.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/init.h"
#include "models/losses.h"

namespace mmgrad::nn {
namespace {
Tensor normal(const Shape& shape, double std, Generator& gen) {
  return mul(randn(shape, DType::F32, Device::cpu(), &gen), std);
}
}  // namespace

// ------------------------------------------------------------------------------- vision
VisionTransformer::Embeddings::Embeddings(const ModelConfig& c, Generator& gen)
    : position_embedding(c.num_patches() + 1, c.vision_width, gen) {
  class_embedding = normal({c.vision_width}, std::pow(static_cast<double>(c.vision_width), -0.5), gen);
  patch_embedding.weight = normal({c.vision_width, 3, c.patch_size, c.patch_size}, 0.02, gen);
  register_parameter("class_embedding", class_embedding);
  patch_embedding.register_weight();
  register_module("patch_embedding", patch_embedding);
  register_module("position_embedding", position_embedding);
}

VisionTransformer::VisionTransformer(const ModelConfig& c, Generator& gen)
    : embeddings(c, gen), pre_layrnorm(c.vision_width),
      encoder(c.vision_layers, c.vision_width, c.vision_heads, parse_activation(c.activation), gen),
      post_layernorm(c.vision_width), patch_size(c.patch_size) {
  register_module("embeddings", embeddings);
  register_module("pre_layrnorm", pre_layrnorm);
  register_module("encoder", encoder);
  register_module("post_layernorm", post_layernorm);
}

Tensor VisionTransformer::embed(const Tensor& images) const {
  Tensor patches = patch_embed(images, embeddings.patch_embedding.weight);  // [B, N, W]
  const int64_t B = patches.shape()[0], W = patches.shape()[2];
  if (patches.shape()[1] + 1 != embeddings.position_embedding.weight.shape()[0])
    fail("VisionTransformer", "image size does not match the model's position embedding",
         {describe("images", images), describe("position_embedding", embeddings.position_embedding.weight)});
  Tensor cls = expand(reshape(embeddings.class_embedding, {1, 1, W}), {B, 1, W});
  Tensor x = add(concat({cls, patches}, 1), embeddings.position_embedding.weight);
  return pre_layrnorm.forward(x);
}

VisionTransformer::Output VisionTransformer::forward(const Tensor& images) const {
  Tensor x = encoder.forward(embed(images));
  return {x, post_layernorm.forward(select(x, 1, 0))};
}

Tensor VisionTransformer::class_attention(const Tensor& images) const {
  NoGradGuard no_grad;
  Tensor x = embed(images);
  const auto& layers = encoder.layers;
  if (layers.empty()) fail("class_attention", "the vision tower has no layers");
  for (size_t i = 0; i + 1 < layers.size(); ++i) x = layers[i]->forward(x);
  const EncoderLayer& last = *layers.back();
  const Tensor h = last.layer_norm1.forward(x);
  const int64_t B = h.shape()[0], T = h.shape()[1], W = h.shape()[2], H = last.self_attn.heads, D = W / H;
  // The class token's query against every key, per head: softmax(q k^T / sqrt(D)).
  Tensor q = reshape(last.self_attn.q_proj.forward(narrow(h, 1, 0, 1)), {B, H, 1, D});
  Tensor k = permute(reshape(last.self_attn.k_proj.forward(h), {B, T, H, D}), {0, 2, 3, 1});  // [B, H, D, T]
  Tensor probs = softmax(mul(matmul(q, k), 1.0 / std::sqrt(static_cast<double>(D))), -1);   // [B, H, 1, T]
  return narrow(reshape(mean(probs, {1}), {B, T}), 1, 1, T - 1);
}

// --------------------------------------------------------------------------------- text
TextTransformer::Embeddings::Embeddings(const ModelConfig& c, Generator& gen)
    : token_embedding(c.vocab_size, c.text_width, gen), position_embedding(c.context_length, c.text_width, gen) {
  register_module("token_embedding", token_embedding);
  register_module("position_embedding", position_embedding);
}

TextTransformer::TextTransformer(const ModelConfig& c, Generator& gen)
    : embeddings(c, gen), encoder(c.text_layers, c.text_width, c.text_heads, parse_activation(c.activation), gen),
      final_layer_norm(c.text_width), eot_token_id(c.eot_token_id) {
  register_module("embeddings", embeddings);
  register_module("encoder", encoder);
  register_module("final_layer_norm", final_layer_norm);
}

Tensor TextTransformer::hidden_states(const Tensor& ids) const {
  if (ids.dim() != 2 || ids.shape()[1] > embeddings.position_embedding.weight.shape()[0])
    fail("TextTransformer", "expects token ids [B, T] with T at most the context length",
         {describe("ids", ids), describe("position_embedding", embeddings.position_embedding.weight)});
  Tensor positions = narrow(embeddings.position_embedding.weight, 0, 0, ids.shape()[1]);
  Tensor x = add(embeddings.token_embedding.forward(ids), positions);
  return final_layer_norm.forward(encoder.forward(x, /*causal=*/true));
}

TextTransformer::Output TextTransformer::forward(const Tensor& ids) const {
  Tensor x = hidden_states(ids);
  const int64_t B = ids.shape()[0], T = ids.shape()[1];
  // The first end-of-text token of each row (argmax returns the first maximum).
  Tensor is_eot = eq(ids.to(DType::I64), static_cast<double>(eot_token_id)).to(DType::I32);
  // Checked where the ids live: on a GPU a kernel, reported at the next synchronisation,
  // so the forward never waits for the device (and a captured step may contain it).
  assert_all(gt(amax(is_eot, {1}), 0.0), "TextTransformer",
             "a sequence has no end-of-text token (id " + std::to_string(eot_token_id) + ") in ids " +
                 describe("ids", ids));
  Tensor eot = argmax(is_eot, 1);
  Tensor rows = add(mul(arange(0, static_cast<double>(B), 1, DType::I64, ids.device()), static_cast<double>(T)), eot);
  Tensor pooled = index_select(reshape(x, {B * T, -1}), 0, rows);
  return {x, pooled};
}

// ------------------------------------------------------------------------------ fusion
FusionTransformer::FusionTransformer(const ModelConfig& c, Generator& gen)
    : image_proj(c.vision_width, c.text_width, true, gen),
      encoder(c.fusion_layers, c.text_width, c.text_heads, parse_activation(c.activation), gen),
      itm_head(c.text_width, 2, true, gen) {
  register_module("image_proj", image_proj);
  register_module("encoder", encoder);
  register_module("itm_head", itm_head);
}

Tensor FusionTransformer::forward(const Tensor& text, const Tensor& image, const Tensor& image_index,
                                  const Tensor& text_index) const {
  // Unmasked self-attention over the text states here (MODELS.md).
  const Tensor memory = image_proj.forward(image);
  if (encoder.layers.empty()) return text_index.defined() ? index_select(text, 0, text_index) : text;
  // Only the first layer sees distinct texts: after its cross-attention every pair differs.
  Tensor h = encoder.layers.front()->forward(text, memory, false, image_index, text_index);
  for (size_t i = 1; i < encoder.layers.size(); ++i) h = encoder.layers[i]->forward(h, memory, false, image_index);
  return h;
}

Tensor FusionTransformer::itm_logits(const Tensor& fused) const { return itm_head.forward(select(fused, 1, 0)); }

CaptionDecoder::CaptionDecoder(const ModelConfig& c, Generator& gen, const Tensor* tied_embedding)
    : image_proj(c.vision_width, c.text_width, true, gen),
      encoder(c.caption_layers, c.text_width, c.text_heads, parse_activation(c.activation), gen),
      final_layer_norm(c.text_width), tied_weight(tied_embedding) {
  register_module("image_proj", image_proj);
  register_module("encoder", encoder);
  register_module("final_layer_norm", final_layer_norm);
  if (!tied_weight) {
    lm_head.weight = normal({c.vocab_size, c.text_width}, 0.02, gen);
    lm_head.register_weight();
    register_module("lm_head", lm_head);
  }
}

Tensor CaptionDecoder::forward(const Tensor& text, const Tensor& image) const {
  Tensor h = final_layer_norm.forward(encoder.forward(text, image_proj.forward(image), true));
  return linear(h, tied_weight ? *tied_weight : lm_head.weight);
}

// ------------------------------------------------------------------------------- model
ClipModel::ClipModel(const ModelConfig& c, Generator& gen)
    : config(c), vision_model(c, gen), visual_projection(c.vision_width, c.embed_dim, false, gen),
      text_model(c, gen), text_projection(c.text_width, c.embed_dim, false, gen) {
  if (c.contrastive != "clip" && c.contrastive != "siglip")
    fail("ClipModel", "unknown contrastive objective '" + c.contrastive + "' (expected clip or siglip)");
  const bool siglip = c.contrastive == "siglip";
  logit_scale = full({}, siglip ? std::log(10.0) : std::log(1 / 0.07));
  register_module("vision_model", vision_model);
  register_module("visual_projection", visual_projection);
  register_module("text_model", text_model);
  register_module("text_projection", text_projection);
  register_parameter("logit_scale", logit_scale);
  if (siglip) {
    logit_bias = full({}, -10.0);
    register_parameter("logit_bias", logit_bias);
  }
  if (c.fusion_layers > 0) {
    fusion_model = std::make_unique<FusionTransformer>(c, gen);
    register_module("fusion_model", *fusion_model);
  }
  if (c.caption_layers > 0) {
    const Tensor* tie = c.tie_lm_head ? &text_model.embeddings.token_embedding.weight : nullptr;
    caption_model = std::make_unique<CaptionDecoder>(c, gen, tie);
    register_module("caption_model", *caption_model);
  }
  clip_init(*this, gen);
}

Tensor ClipModel::image_embedding(const Tensor& pooled) const { return l2_normalize(visual_projection.forward(pooled)); }
Tensor ClipModel::text_embedding(const Tensor& pooled) const { return l2_normalize(text_projection.forward(pooled)); }
Tensor ClipModel::encode_image(const Tensor& images) const { return image_embedding(vision_model.forward(images).pooled); }
Tensor ClipModel::encode_text(const Tensor& ids) const { return text_embedding(text_model.forward(ids).pooled); }

}  // namespace mmgrad::nn
