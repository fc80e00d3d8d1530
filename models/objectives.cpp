#include "models/objectives.h"

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "models/losses.h"

namespace mmgrad::nn {

Losses compute_losses(const ClipModel& model, const Tensor& images, const Tensor& ids,
                      const ObjectiveWeights& w, Generator& gen, const std::vector<int64_t>& groups) {
  if (w.itm > 0 && !model.fusion_model)
    fail("objectives", "the ITM objective needs fusion layers (fusion_layers > 0)");
  if (w.caption > 0 && !model.caption_model)
    fail("objectives", "the caption objective needs a caption decoder (caption_layers > 0)");
  auto vis = model.vision_model.forward(images);
  auto txt = model.text_model.forward(ids);
  Tensor img_emb = model.image_embedding(vis.pooled);
  Tensor txt_emb = model.text_embedding(txt.pooled);

  Losses out;
  auto add_part = [&](const std::string& name, double weight, const Tensor& loss) {
    out.parts.emplace_back(name, loss);
    Tensor weighted = mul(loss, weight);
    out.total = out.total.defined() ? add(out.total, weighted) : weighted;
  };
  if (w.contrastive > 0) {
    const bool siglip = model.config.contrastive == "siglip";
    add_part(siglip ? "siglip" : "clip", w.contrastive,
             siglip ? siglip_loss(img_emb, txt_emb, model.logit_scale, model.logit_bias)
                    : clip_loss(img_emb, txt_emb, model.logit_scale));
  }
  if (w.itm > 0) {
    const int64_t B = images.shape()[0];
    std::vector<int64_t> neg_image, neg_text;
    if (w.hard_negatives) {
      NoGradGuard no_grad;  // sampling only: no gradient through the choice
      Tensor sim = matmul(txt_emb, transpose(img_emb, 0, 1));  // [text, image] cosines
      sim = w.negative_scale > 0 ? mul(sim, w.negative_scale) : mul(sim, exp(model.logit_scale.detach()));
      neg_image = hard_negatives(sim, gen, groups);
      neg_text = hard_negatives(transpose(sim, 0, 1), gen, groups);
    } else {
      neg_image = cyclic_negatives(B);
    }
    add_part("itm", w.itm, itm_loss(*model.fusion_model, txt.last_hidden_state, vis.last_hidden_state, neg_image, neg_text));
  }
  if (w.caption > 0) {
    Tensor logits = model.caption_model->forward(txt.last_hidden_state, vis.last_hidden_state);
    add_part("caption", w.caption, caption_loss(logits, ids, model.config.eot_token_id));
  }
  if (!out.total.defined()) fail("objectives", "every objective has weight 0");
  return out;
}

}  // namespace mmgrad::nn
