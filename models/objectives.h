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

// What the losses read besides the model, all tensors on the model's device. A captured step
// (a CUDA graph, train/step_graph.h) is recorded on one set of these and replays on new values
// copied into them, so everything that varies from step to step is here, the random draws
// included.
struct LossInputs {
  Tensor images;          // [B, 3, S, S]
  Tensor ids;             // [B, T] token ids
  Tensor groups;          // [B] integers: a group's samples are not each other's hard ITM negatives; or undefined
  Tensor negative_draws;  // [2, B] f64 uniforms of the hard negatives (image for text, text for image),
                          // defined when weights.itm > 0 and weights.hard_negatives
};

// The host side of a step's inputs: draws the hard negatives' uniforms from `gen` (only when
// the weights use them, so a generator's sequence does not depend on the other objectives)
// and puts groups and draws on the images' device. first_row: the shard's first row in the
// global batch.
LossInputs make_loss_inputs(const Tensor& images, const Tensor& ids, const ObjectiveWeights& weights, Generator& gen,
                            const std::vector<int64_t>& groups = {}, int64_t first_row = 0);

// The weighted losses of one batch. Nothing is read back to the host on one process: the
// whole computation, backward included, may be captured (HostTransferBan holds it to that).
//
// With a communicator of several ranks, images and ids are this rank's shard of the global
// batch (rank r holds rows [r b, (r + 1) b), all shards of one size) and `groups` is this
// shard's too. The contrastive losses then see the global batch (features gathered with
// gradient), ITM draws hard negatives from it, and every part is scaled so that the mean
// over the ranks of each loss (and, after gradients are averaged, of each gradient) is that
// of one process training on the whole batch. The generator that made the draws must be in
// the same state on every rank.
Losses compute_losses(const ClipModel& model, const LossInputs& inputs, const ObjectiveWeights& weights,
                      dist::Communicator* comm = nullptr);

// make_loss_inputs, then compute_losses (images [B, 3, S, S], ids [B, T]).
Losses compute_losses(const ClipModel& model, const Tensor& images, const Tensor& ids,
                      const ObjectiveWeights& weights, Generator& gen, const std::vector<int64_t>& groups = {},
                      dist::Communicator* comm = nullptr);

}  // namespace mmgrad::nn
