#include "fuzz/tokenizer_checks.h"

#include "core/utf8.h"
#include "data/clip_bpe.h"
#include "fuzz/fuzz_input.h"

namespace mmgrad::fuzz {

void check_loaded_tokenizer(const data::Tokenizer& tokenizer, const std::string& path) {
  const int64_t vocab = tokenizer.vocab_size();
  require(vocab > 0, "a loaded tokenizer has a vocabulary");
  for (int64_t special : {tokenizer.start_token(), tokenizer.end_token(), tokenizer.pad_token()})
    require(special >= 0 && special < vocab, "special tokens are in the vocabulary");
  for (const char* text : {"a photo of a red circle", "", "  Ünïcödé 日本 🙂 &amp; <|endoftext|>", "\xff\xfe\x80 x"}) {
    std::vector<int64_t> ids;
    if (!parses_or_refuses_clearly([&] { ids = tokenizer.encode(text); }, path)) continue;
    for (int64_t id : ids) require(id >= 0 && id < vocab, "token ids are in the vocabulary");
    require(utf8::is_valid(tokenizer.decode(ids)), "decoded text is valid UTF-8");
  }
  Tensor batch;
  if (parses_or_refuses_clearly([&] { batch = tokenizer.encode_batch({"a red circle", ""}, 6); }, path))
    require(batch.numel() == 12, "a batch is texts x context");
}

void fuzz_pretrained_tokenizer(const uint8_t* data, size_t size, const std::string& file_name) {
  const std::string path = input_as_file(data, size, file_name);
  std::unique_ptr<data::Tokenizer> tokenizer;
  if (parses_or_refuses_clearly([&] { tokenizer = data::load_pretrained_tokenizer(path); }, path))
    check_loaded_tokenizer(*tokenizer, path);
}

}  // namespace mmgrad::fuzz
