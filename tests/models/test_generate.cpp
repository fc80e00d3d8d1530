// Caption generation and the text tower's hidden states.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "models/generate.h"

using namespace mmgrad;

namespace {
nn::ModelConfig small_config() {
  nn::ModelConfig c = nn::preset("clip-tiny");
  c.image_size = 16, c.patch_size = 8, c.vision_width = c.text_width = c.embed_dim = 16;
  c.vision_layers = c.text_layers = 1, c.vision_heads = c.text_heads = 2;
  c.context_length = 10, c.vocab_size = 12, c.eot_token_id = 10;
  c.fusion_layers = 0, c.caption_layers = 1;
  return c;
}
}  // namespace

TEST(Generate, HiddenStatesAreTheForwardStatesAndNeedNoEndToken) {
  Generator g(3);
  nn::ClipModel m(small_config(), g);
  Tensor ids = from_data<int64_t>({11, 3, 4, 10, 0, 11, 5, 10, 1, 2}, {2, 5});
  NoGradGuard no_grad;
  EXPECT_EQ(to_vector<float>(m.text_model.hidden_states(ids)), to_vector<float>(m.text_model.forward(ids).last_hidden_state));
  Tensor prefix = from_data<int64_t>({11, 3}, {1, 2});  // no end-of-text yet
  EXPECT_NO_THROW(m.text_model.hidden_states(prefix));
  EXPECT_THROW(m.text_model.forward(prefix), Error);
}

TEST(Generate, GreedyTokensAreTheArgmaxOfTeacherForcedLogits) {
  Generator g(5);
  nn::ClipModel m(small_config(), g);
  Tensor images = randn({3, 3, 16, 16}, DType::F32, Device::cpu(), &g);
  const auto captions = nn::generate_captions(m, images, /*start=*/11, /*max_length=*/8);
  ASSERT_EQ(captions.size(), 3u);
  NoGradGuard no_grad;
  const Tensor image_states = m.vision_model.forward(images).last_hidden_state;
  for (int64_t b = 0; b < 3; ++b) {
    const auto& cap = captions[static_cast<size_t>(b)];
    EXPECT_LE(cap.size(), 7u);
    std::vector<int64_t> seq = {11};
    seq.insert(seq.end(), cap.begin(), cap.end());
    Tensor ids = from_data(seq, {1, static_cast<int64_t>(seq.size())});
    Tensor logits = m.caption_model->forward(m.text_model.hidden_states(ids), narrow(image_states, 0, b, 1));
    const std::vector<int64_t> best = to_vector<int64_t>(argmax(select(logits, 0, 0), 1));
    // Each generated token is the argmax after its prefix; the last step chose EOT unless the
    // length limit stopped it.
    for (size_t t = 0; t < cap.size(); ++t) EXPECT_EQ(best[t], cap[t]) << "image " << b << " position " << t;
    for (int64_t tok : cap) EXPECT_NE(tok, 10);
    if (cap.size() < 7u) {
      EXPECT_EQ(best[cap.size()], 10);
    }
  }
}

TEST(Generate, NeedsACaptionDecoder) {
  nn::ModelConfig c = small_config();
  c.caption_layers = 0;
  Generator g(1);
  nn::ClipModel m(c, g);
  EXPECT_THROW(nn::generate_captions(m, zeros({1, 3, 16, 16}), 11, 5), Error);
}
