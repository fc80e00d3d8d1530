#include "models/init.h"

#include <cmath>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"

namespace mmgrad::nn {
namespace {

void normal_(Tensor& t, double std, Generator& gen) {
  copy_(t, mul(randn(t.shape(), DType::F32, Device::cpu(), &gen), std));
}
void zero_tensor(Tensor& t) { fill_(t, 0.0); }

// Attention q/k/v with std W^-0.5 (2L)^-0.5, out_proj W^-0.5; fc1 (2W)^-0.5, fc2 like q/k/v;
// biases zero; LayerNorms are already ones/zeros.
void init_attention(Attention& a, double width, double layers, Generator& gen) {
  const double in_std = std::pow(width, -0.5) * std::pow(2 * layers, -0.5), out_std = std::pow(width, -0.5);
  for (Linear* l : {&a.q_proj, &a.k_proj, &a.v_proj}) {
    normal_(l->weight, in_std, gen);
    zero_tensor(l->bias);
  }
  normal_(a.out_proj.weight, out_std, gen);
  zero_tensor(a.out_proj.bias);
}

void init_mlp(Mlp& m, double width, double layers, Generator& gen) {
  normal_(m.fc1.weight, std::pow(2 * width, -0.5), gen);
  normal_(m.fc2.weight, std::pow(width, -0.5) * std::pow(2 * layers, -0.5), gen);
  zero_tensor(m.fc1.bias);
  zero_tensor(m.fc2.bias);
}

void init_stack(Encoder& e, double width, Generator& gen) {
  const double L = static_cast<double>(e.layers.size());
  for (auto& layer : e.layers) {
    init_attention(layer->self_attn, width, L, gen);
    init_mlp(layer->mlp, width, L, gen);
  }
}

void init_stack(CrossAttentionEncoder& e, double width, Generator& gen) {
  const double L = static_cast<double>(e.layers.size());
  for (auto& layer : e.layers) {
    init_attention(layer->self_attn, width, L, gen);
    init_attention(layer->cross_attn, width, L, gen);
    init_mlp(layer->mlp, width, L, gen);
  }
}

}  // namespace

void clip_init(ClipModel& m, Generator& gen) {
  NoGradGuard no_grad;
  const ModelConfig& c = m.config;
  const double wv = static_cast<double>(c.vision_width), wt = static_cast<double>(c.text_width);
  auto& ve = m.vision_model.embeddings;
  normal_(ve.class_embedding, std::pow(wv, -0.5), gen);
  normal_(ve.patch_embedding.weight, 0.02, gen);
  normal_(ve.position_embedding.weight, 0.02, gen);
  init_stack(m.vision_model.encoder, wv, gen);
  normal_(m.text_model.embeddings.token_embedding.weight, 0.02, gen);
  normal_(m.text_model.embeddings.position_embedding.weight, 0.02, gen);
  init_stack(m.text_model.encoder, wt, gen);
  normal_(m.visual_projection.weight, std::pow(wv, -0.5), gen);
  normal_(m.text_projection.weight, std::pow(wt, -0.5), gen);
  if (m.fusion_model) {
    normal_(m.fusion_model->image_proj.weight, 0.02, gen);
    zero_tensor(m.fusion_model->image_proj.bias);
    init_stack(m.fusion_model->encoder, wt, gen);
    normal_(m.fusion_model->itm_head.weight, 0.02, gen);
    zero_tensor(m.fusion_model->itm_head.bias);
  }
  if (m.caption_model) {
    normal_(m.caption_model->image_proj.weight, 0.02, gen);
    zero_tensor(m.caption_model->image_proj.bias);
    init_stack(m.caption_model->encoder, wt, gen);
    if (!m.caption_model->tied_weight) normal_(m.caption_model->lm_head.weight, 0.02, gen);
  }
}

}  // namespace mmgrad::nn
