// The training tests' smallest model: shapes-small's recipe at width 16, one layer per tower,
// one fusion and one caption layer, a 20-token vocabulary, 8 samples per step. Each test sets
// its own step counts on top.
#pragma once
#include "train/run_config.h"

namespace mmtest {

inline mmgrad::train::RunConfig tiny_training_config() {
  mmgrad::train::RunConfig c = mmgrad::train::run_preset("shapes-small");
  mmgrad::nn::ModelConfig& m = c.model;
  m.image_size = 16, m.patch_size = 8;
  m.vision_width = m.text_width = m.embed_dim = 16;
  m.vision_layers = m.text_layers = 1;
  m.vision_heads = m.text_heads = 2;
  m.context_length = 8, m.vocab_size = 20, m.eot_token_id = 18;
  m.fusion_layers = 1, m.caption_layers = 1;
  c.batch_size = 8, c.lr = 1e-2;
  return c;
}

}  // namespace mmtest
