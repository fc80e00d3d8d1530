// The towers and heads of ../shared/spec/MODELS.md, with its parameter names, and the model
// that combines them per config.
#pragma once
#include <memory>

#include "models/config.h"
#include "models/layers.h"

namespace mmgrad::nn {

// ViT. Order: patchify, prepend the class token, add positions, pre_layrnorm, layers;
// pooled = post_layernorm(class token).
class VisionTransformer : public Module {
 public:
  VisionTransformer(const ModelConfig& c, Generator& gen);
  struct Output {
    Tensor last_hidden_state;  // [B, N+1, W], before post_layernorm (the fusion memory)
    Tensor pooled;             // [B, W]
  };
  Output forward(const Tensor& images) const;  // images [B, 3, S, S]
  // Where the class token looks in the last layer: its attention over the patches [B, N]
  // (softmax row of the class token, mean over heads, patches in row-major order; the
  // share it keeps for itself is left out, so rows sum to at most 1). For attention maps.
  Tensor class_attention(const Tensor& images) const;

  struct PatchEmbedding : Module {
    Tensor weight;  // [W, 3, P, P], no bias
    void register_weight() { register_parameter("weight", weight); }
  };
  struct Embeddings : Module {
    Embeddings(const ModelConfig& c, Generator& gen);
    Tensor class_embedding;  // [W]
    PatchEmbedding patch_embedding;
    Embedding position_embedding;  // [N+1, W]
  };
  Embeddings embeddings;
  LayerNorm pre_layrnorm;  // (sic) the Hugging Face spelling
  Encoder encoder;
  LayerNorm post_layernorm;
  int64_t patch_size;

 private:
  Tensor embed(const Tensor& images) const;  // [B, N+1, W] after pre_layrnorm
};

// Causal text transformer; pooled = final-normed state at the first end-of-text token.
class TextTransformer : public Module {
 public:
  TextTransformer(const ModelConfig& c, Generator& gen);
  struct Output {
    Tensor last_hidden_state;  // [B, T, W], after final_layer_norm
    Tensor pooled;             // [B, W]
  };
  Output forward(const Tensor& ids) const;  // ids integer [B, T], T <= context length
  // The last hidden states alone: no end-of-text token needed (caption generation feeds
  // prefixes that have none yet).
  Tensor hidden_states(const Tensor& ids) const;

  struct Embeddings : Module {
    Embeddings(const ModelConfig& c, Generator& gen);
    Embedding token_embedding;     // [V, W]
    Embedding position_embedding;  // [C, W]
  };
  Embeddings embeddings;
  Encoder encoder;
  LayerNorm final_layer_norm;
  int64_t eot_token_id;
};

// Text states attend to image states (projected to the text width); ITM logits from the
// fused state at text position 0.
class FusionTransformer : public Module {
 public:
  FusionTransformer(const ModelConfig& c, Generator& gen);
  // text [B, T, Wt] (after final_layer_norm), image [B, N+1, Wv] -> fused [B, T, Wt].
  // With image_index and text_index (integer [P] each; either may be left undefined):
  // image is [U, N+1, Wv], text [V, T, Wt], and pair p fuses text text_index[p] with image
  // image_index[p] -> fused [P, T, Wt]. The same values as gathering the pairs first, but
  // image_proj and every layer's k_proj / v_proj run once per image, and the first layer's
  // self-attention once per text, rather than once per pair.
  Tensor forward(const Tensor& text, const Tensor& image, const Tensor& image_index = Tensor(),
                 const Tensor& text_index = Tensor()) const;
  Tensor itm_logits(const Tensor& fused) const;  // [B, 2]
  Linear image_proj;
  CrossAttentionEncoder encoder;
  Linear itm_head;
};

// Generative head (CoCa's split): causal self-attention over the text tower's states plus
// cross-attention onto the image; position t predicts token t+1.
class CaptionDecoder : public Module {
 public:
  CaptionDecoder(const ModelConfig& c, Generator& gen, const Tensor* tied_embedding);
  Tensor forward(const Tensor& text, const Tensor& image) const;  // -> logits [B, T, V]
  Linear image_proj;
  CrossAttentionEncoder encoder;
  LayerNorm final_layer_norm;
  struct LmHead : Module {
    Tensor weight;  // [V, Wt]; not registered when tied to the token embedding
    void register_weight() { register_parameter("weight", weight); }
  } lm_head;
  const Tensor* tied_weight = nullptr;  // the token embedding's slot, when tied
};

// Built with CLIP's initialisation (models/init.h).
class ClipModel : public Module {
 public:
  ClipModel(const ModelConfig& c, Generator& gen);
  // L2-normalised embeddings [B, E].
  Tensor encode_image(const Tensor& images) const;
  Tensor encode_text(const Tensor& ids) const;
  // The same from the towers' pooled outputs (for callers that also need the hidden states).
  Tensor image_embedding(const Tensor& pooled) const;
  Tensor text_embedding(const Tensor& pooled) const;

  ModelConfig config;
  VisionTransformer vision_model;
  Linear visual_projection;
  TextTransformer text_model;
  Linear text_projection;
  Tensor logit_scale;  // scalar: ln(1/0.07) at init for CLIP (clamp to ln(100) after each
                       // step), ln(10) for SigLIP
  Tensor logit_bias;   // SigLIP only: -10 at init
  std::unique_ptr<FusionTransformer> fusion_model;
  std::unique_ptr<CaptionDecoder> caption_model;
};

}  // namespace mmgrad::nn
