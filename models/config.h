// Model shapes (../shared/spec/MODELS.md "Benchmark configurations").
#pragma once
#include <cstdint>
#include <string>

namespace mmgrad::nn {

struct ModelConfig {
  std::string name;
  // vision tower
  int64_t image_size = 32, patch_size = 4, vision_width = 128, vision_layers = 4, vision_heads = 4;
  // text tower
  int64_t context_length = 32, vocab_size = 1024, text_width = 128, text_layers = 4, text_heads = 4;
  int64_t embed_dim = 128;
  int64_t fusion_layers = 2;   // 0: no fusion transformer (no ITM objective)
  int64_t caption_layers = 0;  // 0: no caption decoder
  bool tie_lm_head = false;    // caption lm_head shares the token embedding
  std::string activation = "gelu";
  std::string contrastive = "clip";  // "clip" (InfoNCE) or "siglip" (adds logit_bias)
  int64_t eot_token_id = 1023;  // pooled text = hidden state at the first occurrence
  int64_t batch_size = 128;     // the benchmark batch

  int64_t num_patches() const { return (image_size / patch_size) * (image_size / patch_size); }
};

// "clip-tiny", "clip-b32"; throws naming the known presets otherwise.
ModelConfig preset(const std::string& name);

}  // namespace mmgrad::nn
