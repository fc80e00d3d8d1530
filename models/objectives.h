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

struct ObjectiveWeights {
  double contrastive = 1.0;  // CLIP or SigLIP, per the model's config
  double itm = 0.0;          // needs fusion layers
  double caption = 0.0;      // needs a caption decoder
  bool hard_negatives = true;  // ITM negatives drawn from the similarities; else cyclic
};

struct Losses {
  Tensor total;                                       // the weighted sum, a scalar
  std::vector<std::pair<std::string, Tensor>> parts;  // each objective before weighting
};

// images [B, 3, S, S], ids [B, T]. `gen` draws the hard negatives.
Losses compute_losses(const ClipModel& model, const Tensor& images, const Tensor& ids,
                      const ObjectiveWeights& weights, Generator& gen);

}  // namespace mmgrad::nn
