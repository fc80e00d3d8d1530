// A CLIP small enough for a unit test: 16x16 images in 8x8 patches, 8-token captions over a
// vocabulary of 20 (19 is end-of-text), two heads per layer; the widths and layer counts are
// the test's. And captions for it: caption b starts with token 1 + b % 18 (so captions differ),
// then 5s, with end-of-text at a place the test chooses.
#pragma once
#include <vector>

#include "autograd/ops.h"
#include "models/config.h"

namespace mmtest {

inline mmgrad::nn::ModelConfig tiny_clip_config(int64_t width, int64_t tower_layers, int64_t head_layers) {
  mmgrad::nn::ModelConfig c = mmgrad::nn::preset("clip-tiny");
  c.image_size = 16, c.patch_size = 8, c.vision_width = c.text_width = c.embed_dim = width;
  c.vision_layers = c.text_layers = tower_layers, c.vision_heads = c.text_heads = 2, c.context_length = 8;
  c.vocab_size = 20, c.eot_token_id = 19, c.fusion_layers = c.caption_layers = head_layers;
  return c;
}

// eot_at(b) is in [1, 8).
template <typename EotAt>
mmgrad::Tensor tiny_captions(int64_t batch, EotAt eot_at) {
  std::vector<int64_t> ids(static_cast<size_t>(batch * 8), 5);
  for (int64_t b = 0; b < batch; ++b) {
    ids[static_cast<size_t>(b * 8)] = 1 + b % 18;
    ids[static_cast<size_t>(b * 8 + eot_at(b))] = 19;
  }
  return mmgrad::from_data(ids, {batch, 8});
}

}  // namespace mmtest
