// CLIP's merges file (bpe_simple_vocab_16e6.txt, optionally gzip-free text): version line,
// merge pairs; then encoding and decoding with what was loaded.
#include "fuzz/tokenizer_checks.h"

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  mmgrad::fuzz::fuzz_pretrained_tokenizer(data, size, "merges.txt");
  return 0;
}
