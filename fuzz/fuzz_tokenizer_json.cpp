// Hugging Face tokenizer.json (BPE models: vocabulary, merges, added tokens, normalizer,
// pre-tokenizer, post-processor); then encoding and decoding with what was loaded.
#include "data/clip_bpe.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/tokenizer_checks.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz::input_as_file(data, size, "tokenizer.json");
  std::unique_ptr<data::Tokenizer> tokenizer;
  if (fuzz::parses_or_refuses_clearly([&] { tokenizer = data::load_pretrained_tokenizer(path); }, path))
    fuzz::check_loaded_tokenizer(*tokenizer, path);
  return 0;
}
