// mmgrad's own tokenizer file (written by BpeTokenizer::save into every run folder).
#include "data/bpe.h"
#include "fuzz/fuzz_input.h"
#include "fuzz/tokenizer_checks.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string path = fuzz::input_as_file(data, size, "tokenizer.bpe");
  data::BpeTokenizer tokenizer;
  if (fuzz::parses_or_refuses_clearly([&] { tokenizer = data::BpeTokenizer::load(path); }, path)) {
    fuzz::check_loaded_tokenizer(tokenizer, path);
    std::string text = "a red circle left of a green square \xff\xfe";
    fuzz::require(tokenizer.decode_bytes(tokenizer.encode(text)) == text, "byte-level BPE is lossless");
  }
  return 0;
}
