#include "models/objectives.h"

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "dist/collective_ops.h"
#include "dist/communicator.h"
#include "autograd/ops.h"
#include "models/clip.h"
#include "models/losses.h"

namespace mmgrad::nn {

LossInputs make_loss_inputs(const Tensor& images, const Tensor& ids, const ObjectiveWeights& w, Generator& gen,
                            const std::vector<int64_t>& groups, int64_t first_row) {
  LossInputs in{images, ids, Tensor(), Tensor()};
  const Device device = images.device();
  const int64_t B = images.dim() > 0 ? images.shape()[0] : 0;
  if (w.itm > 0 && w.hard_negatives) {  // the only use of groups and draws
    if (!groups.empty()) {
      if (static_cast<int64_t>(groups.size()) != B)
        fail("objectives", fmt::format("{} group ids for a batch of {} images", groups.size(), B));
      in.groups = from_data(groups, {B}, device);
    }
    // One key per direction, in this order (image negatives for the texts, then text
    // negatives for the images), as hard_negatives would take them.
    Tensor for_texts = negative_draws(gen, B, first_row, device);
    Tensor for_images = negative_draws(gen, B, first_row, device);
    in.negative_draws = stack({for_texts, for_images}, 0);
  }
  return in;
}

Losses compute_losses(const ClipModel& model, const Tensor& images, const Tensor& ids, const ObjectiveWeights& w,
                      Generator& gen, const std::vector<int64_t>& groups, dist::Communicator* comm) {
  const int64_t first_row = comm ? static_cast<int64_t>(comm->rank()) * (images.dim() > 0 ? images.shape()[0] : 0) : 0;
  return compute_losses(model, make_loss_inputs(images, ids, w, gen, groups, first_row), w, comm);
}

Losses compute_losses(const ClipModel& model, const LossInputs& in, const ObjectiveWeights& w,
                      dist::Communicator* comm) {
  const Tensor& images = in.images;
  const Tensor& ids = in.ids;
  dist::SingleCommunicator single;
  dist::Communicator& c = comm ? *comm : single;
  const bool distributed = c.size() > 1;
  if (w.itm > 0 && !model.fusion_model)
    fail("objectives", "the ITM objective needs fusion layers (fusion_layers > 0)");
  if (w.caption > 0 && !model.caption_model)
    fail("objectives", "the caption objective needs a caption decoder (caption_layers > 0)");
  auto vis = model.vision_model.forward(images);
  auto txt = model.text_model.forward(ids);
  Tensor img_emb = model.image_embedding(vis.pooled);
  Tensor txt_emb = model.text_embedding(txt.pooled);
  const int64_t B = images.shape()[0];
  const int64_t first_row = static_cast<int64_t>(c.rank()) * B;  // this shard's rows of the global batch
  // Every rank's embeddings, the gradient flowing back to each rank's own rows.
  Tensor all_img = distributed ? dist::all_gather_with_grad(c, img_emb) : img_emb;
  Tensor all_txt = distributed ? dist::all_gather_with_grad(c, txt_emb) : txt_emb;

  Losses out;
  auto add_part = [&](const std::string& name, double weight, const Tensor& loss) {
    out.parts.emplace_back(name, loss);
    Tensor weighted = mul(loss, weight);
    out.total = out.total.defined() ? add(out.total, weighted) : weighted;
  };
  if (w.contrastive > 0) {
    const bool siglip = model.config.contrastive == "siglip";
    Tensor loss;
    if (!distributed) {
      loss = siglip ? siglip_loss(img_emb, txt_emb, model.logit_scale, model.logit_bias)
                    : clip_loss(img_emb, txt_emb, model.logit_scale);
    } else {
      loss = siglip ? siglip_loss_rows(img_emb, all_txt, model.logit_scale, model.logit_bias, first_row)
                    : clip_loss_rows(img_emb, txt_emb, all_img, all_txt, model.logit_scale, first_row);
    }
    add_part(siglip ? "siglip" : "clip", w.contrastive, loss);
  }
  if (w.itm > 0) {
    Tensor neg_image, neg_text;
    // Negatives come from the global batch: every rank's hidden states, with gradient.
    Tensor text_pool, image_pool;
    if (distributed) {
      text_pool = dist::all_gather_with_grad(c, txt.last_hidden_state.contiguous());
      image_pool = dist::all_gather_with_grad(c, vis.last_hidden_state.contiguous());
    }
    if (w.hard_negatives) {
      if (!in.negative_draws.defined() || in.negative_draws.dim() != 2 || in.negative_draws.shape()[0] != 2 ||
          in.negative_draws.shape()[1] != B)
        fail("objectives", "hard ITM negatives need the step's draws [2, B] (make_loss_inputs makes them)",
             {describe("images", images), describe("negative_draws", in.negative_draws)});
      NoGradGuard no_grad;  // sampling only: no gradient through the choice
      Tensor all_groups = in.groups;
      if (distributed && all_groups.defined()) all_groups = c.all_gather(all_groups.to(Device::cpu())).to(images.device());
      const Tensor scale = w.negative_scale > 0 ? Tensor() : exp(model.logit_scale.detach());
      auto scaled = [&](const Tensor& sim) { return scale.defined() ? mul(sim, scale) : mul(sim, w.negative_scale); };
      // [this rank's texts, all images] and [this rank's images, all texts]: rows of the
      // global similarity matrix and of its transpose.
      Tensor sim_text = scaled(matmul(txt_emb, transpose(all_img, 0, 1)));
      Tensor sim_image = distributed ? scaled(matmul(img_emb, transpose(all_txt, 0, 1))) : transpose(sim_text, 0, 1);
      neg_image = sample_hard_negatives(sim_text, select(in.negative_draws, 0, 0), all_groups, first_row);
      neg_text = sample_hard_negatives(sim_image, select(in.negative_draws, 0, 1), all_groups, first_row);
    } else {
      if (distributed) fail("objectives", "cyclic ITM negatives (hard_negatives = false) are not defined across ranks");
      neg_image = cyclic_negatives(B, images.device());
    }
    add_part("itm", w.itm, itm_loss(*model.fusion_model, txt.last_hidden_state, vis.last_hidden_state, neg_image,
                                    neg_text, text_pool, image_pool));
  }
  if (w.caption > 0) {
    Tensor logits = model.caption_model->forward(txt.last_hidden_state, vis.last_hidden_state);
    Tensor loss = caption_loss(logits, ids, model.config.eot_token_id);
    if (distributed) {
      // caption_loss averages over this shard's predicted tokens; the whole batch's mean is
      // over every shard's: weight this shard by its share (times the rank count, since the
      // ranks' losses are averaged).
      const int64_t mine = caption_target_count(ids, model.config.eot_token_id);
      Tensor counts = from_data(std::vector<int64_t>{mine}, {1});
      c.all_reduce_sum(counts);
      const int64_t total = to_vector<int64_t>(counts)[0];
      if (total == 0) fail("objectives", "no caption token to predict in the global batch");
      loss = mul(loss, static_cast<double>(mine) * c.size() / static_cast<double>(total));
    }
    add_part("caption", w.caption, loss);
  }
  if (!out.total.defined()) fail("objectives", "every objective has weight 0");
  return out;
}

}  // namespace mmgrad::nn
