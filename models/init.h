// CLIP's initialisation (as Hugging Face's CLIPPreTrainedModel applies it, factor 1), extended
// to the fusion and caption layers with the same per-width, per-depth rule.
#pragma once
#include "core/rng.h"

namespace mmgrad::nn {

class ClipModel;
void clip_init(ClipModel& model, Generator& gen);

}  // namespace mmgrad::nn
