#include "data/tokenizer.h"

#include <algorithm>

#include "autograd/ops.h"
#include "core/error.h"

namespace mmgrad::data {

Tensor Tokenizer::encode_batch(const std::vector<std::string>& texts, int64_t context_length) const {
  if (context_length < 2) fail("tokenizer", "the context length must leave room for the start and end tokens");
  const int64_t B = static_cast<int64_t>(texts.size());
  std::vector<int64_t> out(static_cast<size_t>(B * context_length), pad_token());
  for (int64_t b = 0; b < B; ++b) {
    std::vector<int64_t> ids = encode(texts[static_cast<size_t>(b)]);
    if (static_cast<int64_t>(ids.size()) > context_length - 2) ids.resize(static_cast<size_t>(context_length - 2));
    int64_t* row = out.data() + b * context_length;
    row[0] = start_token();
    std::copy(ids.begin(), ids.end(), row + 1);
    row[ids.size() + 1] = end_token();
  }
  return from_data(out, {B, context_length});
}

}  // namespace mmgrad::data
