// Encoding arbitrary bytes (invalid UTF-8, control characters, huge words) with a trained
// byte-level BPE and with CLIP's text rules: the BPE round-trips exactly, decoding gives
// valid UTF-8, and batches always end with the end-of-text token.
#include "core/utf8.h"
#include "data/bpe.h"
#include "data/clip_bpe.h"
#include "fuzz/fuzz_input.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static const data::BpeTokenizer tokenizer = data::BpeTokenizer::train(
      {"a red circle left of a green square", "two blue triangles above a small yellow star",
       "Ünïcödé — 日本語のテキスト 🙂", "tabs\tand\nnewlines  and   spaces"}, 400);
  std::string text(reinterpret_cast<const char*>(data), size);
  std::vector<int64_t> ids = tokenizer.encode(text);
  for (int64_t id : ids) fuzz::require(id >= 0 && id < tokenizer.vocab_size(), "token ids are in the vocabulary");
  fuzz::require(tokenizer.decode_bytes(ids) == text, "byte-level BPE is lossless");
  fuzz::require(utf8::is_valid(tokenizer.decode(ids)), "decoded text is valid UTF-8");
  Tensor batch = tokenizer.encode_batch({text}, 8);
  const int64_t* row = batch.data_ptr<int64_t>();
  bool has_end = false;
  for (int i = 0; i < 8; ++i) has_end |= row[i] == tokenizer.end_token();
  fuzz::require(row[0] == tokenizer.start_token() && has_end, "a batch row starts and ends with the special tokens");
  // CLIP's cleaning and word split (pretrained tokenizers use them) on the same bytes.
  data::bpe_text::clip_words(data::bpe_text::clip_clean(text));
  data::bpe_text::gpt2_words(text);
  return 0;
}
