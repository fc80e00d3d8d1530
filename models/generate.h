// Caption generation with the caption decoder: greedy decoding, one token at a time.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::nn {

class ClipModel;

// For each image [B, 3, S, S], the greedy caption's token ids (without the start token and
// without the end-of-text token), at most max_length - 1 tokens. Each step reruns the text
// tower and decoder over the whole prefix (no key/value cache: captions are short here).
std::vector<std::vector<int64_t>> generate_captions(const ClipModel& model, const Tensor& images,
                                                    int64_t start_token, int64_t max_length);

}  // namespace mmgrad::nn
