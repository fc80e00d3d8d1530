#include "models/config.h"

#include "core/error.h"

namespace mmgrad::nn {

ModelConfig preset(const std::string& name) {
  ModelConfig c;
  c.name = name;
  if (name == "clip-tiny") return c;  // the defaults above are clip-tiny
  if (name == "clip-b32") {
    c.image_size = 224;
    c.patch_size = 32;
    c.vision_width = 768;
    c.vision_layers = 12;
    c.vision_heads = 12;
    c.context_length = 77;
    c.vocab_size = 49408;
    c.text_width = 512;
    c.text_layers = 12;
    c.text_heads = 8;
    c.embed_dim = 512;
    c.fusion_layers = 0;
    c.activation = "quick_gelu";
    c.eot_token_id = 49407;
    c.batch_size = 256;
    return c;
  }
  fail("preset", "unknown model preset '" + name + "' (known: clip-tiny, clip-b32)");
}

}  // namespace mmgrad::nn
