#include "models/generate.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"

namespace mmgrad::nn {

std::vector<std::vector<int64_t>> generate_captions(const ClipModel& model, const Tensor& images,
                                                    int64_t start_token, int64_t max_length) {
  if (!model.caption_model) fail("generate_captions", "the model has no caption decoder (caption_layers = 0)");
  NoGradGuard no_grad;
  const int64_t B = images.shape()[0];
  max_length = std::min(max_length, model.config.context_length);
  const Tensor image_states = model.vision_model.forward(images).last_hidden_state;
  Tensor ids = full({B, 1}, static_cast<double>(start_token), DType::I64, images.device());
  std::vector<std::vector<int64_t>> out(static_cast<size_t>(B));
  std::vector<bool> done(static_cast<size_t>(B), false);
  int64_t open = B;
  for (int64_t t = 1; t < max_length && open > 0; ++t) {
    Tensor logits = model.caption_model->forward(model.text_model.hidden_states(ids), image_states);
    Tensor next = argmax(select(logits, 1, t - 1), 1);  // [B] i64
    const std::vector<int64_t> tokens = to_vector<int64_t>(next);
    for (int64_t b = 0; b < B; ++b) {
      if (done[static_cast<size_t>(b)]) continue;
      if (tokens[static_cast<size_t>(b)] == model.config.eot_token_id) {
        done[static_cast<size_t>(b)] = true;
        --open;
      } else {
        out[static_cast<size_t>(b)].push_back(tokens[static_cast<size_t>(b)]);
      }
    }
    ids = concat({ids, unsqueeze(next, 1)}, 1);
  }
  return out;
}

}  // namespace mmgrad::nn
