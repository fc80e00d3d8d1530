// Hugging Face tokenizer.json (BPE models: vocabulary, merges, added tokens, normalizer,
// pre-tokenizer, post-processor); then encoding and decoding with what was loaded.
#include "fuzz/tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mmgrad::fuzz::fuzz_pretrained_tokenizer(data, size, "tokenizer.json");
  return 0;
}
