// What training, evaluation and caption generation need from a tokenizer, whichever
// vocabulary it has: mmgrad's own byte-level BPE trained on the captions (data/bpe.h), or a
// pretrained one loaded from CLIP's merges file or a Hugging Face tokenizer.json
// (data/clip_bpe.h).
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::data {

class Tokenizer {
 public:
  virtual ~Tokenizer() = default;
  virtual std::vector<int64_t> encode(const std::string& text) const = 0;  // no special tokens
  virtual std::string decode(const std::vector<int64_t>& ids) const = 0;   // special tokens skipped
  virtual int64_t vocab_size() const = 0;
  virtual int64_t start_token() const = 0;
  virtual int64_t end_token() const = 0;
  virtual int64_t pad_token() const = 0;

  // [texts, context] i64: start, tokens, end, then padding. Too-long texts are truncated and
  // still end with the end-of-text token (CLIP's rule), so EOT pooling always finds one.
  Tensor encode_batch(const std::vector<std::string>& texts, int64_t context_length) const;
};

}  // namespace mmgrad::data
