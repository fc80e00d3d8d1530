// The training objectives combined by weight (CLIP/SigLIP + ITM + caption, as ALBEF and
// CoCa combine them), computed from one batch of images and token ids.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace mmgrad::nn {

class ClipModel;
}  // namespace mmgrad::nn
namespace mmgrad::dist {
class Communicator;
}  // namespace mmgrad::dist
namespace mmgrad::nn {

struct ObjectiveWeights {
  double contrastive = 1.0;  // CLIP or SigLIP, per the model's config
  double itm = 0.0;          // needs fusion layers
  double caption = 0.0;      // needs a caption decoder
  bool hard_negatives = true;  // ITM negatives drawn from the similarities; else cyclic
  // The cosine similarities are multiplied by this before the softmax that draws the hard
  // negatives; 0 uses the learned exp(logit_scale), as ALBEF does. Trained from scratch on
  // data with few distinct concepts, ALBEF's sharp softmax draws negatives that differ only in
  // what the towers cannot yet see, and ITM never leaves the constant prediction (measured on
  // the shapes dataset: loss stuck at 0.636 = the entropy of 1 positive in 3); softmax of the
  // plain cosines keeps most negatives easy early and still prefers the similar ones.
  double negative_scale = 1;
};

struct Losses {
  Tensor total;                                       // the weighted sum, a scalar
  std::vector<std::pair<std::string, Tensor>> parts;  // each objective before weighting
};

// images [B, 3, S, S], ids [B, T]. `gen` draws the hard negatives; `groups` (optional, one
// id per sample) keeps samples of a group from being each other's negatives (losses.h).
//
// With a communicator of several ranks, images and ids are this rank's shard of the global
// batch (rank r holds rows [r b, (r + 1) b), all shards of one size) and `groups` is this
// shard's too. The contrastive losses then see the global batch (features gathered with
// gradient), ITM draws hard negatives from it, and every part is scaled so that the mean
// over the ranks of each loss (and, after gradients are averaged, of each gradient) is that
// of one process training on the whole batch. `gen` must be in the same state on every rank.
Losses compute_losses(const ClipModel& model, const Tensor& images, const Tensor& ids,
                      const ObjectiveWeights& weights, Generator& gen, const std::vector<int64_t>& groups = {},
                      dist::Communicator* comm = nullptr);

}  // namespace mmgrad::nn
