// A byte-level BPE tokenizer: trained on a corpus, encodes any UTF-8 (or arbitrary bytes)
// losslessly, and is saved as a small text file.
//
// Ids 0-255 are the bytes; merges follow in the order they were learned; the special tokens
// (start of text, end of text, padding) come last. Text is pre-split into chunks (a run of
// letters, of digits, or one other character, each with the space before it attached, as
// GPT-2 does), and merges never cross chunks.
#pragma once
#include <cstdint>
#include <string>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "data/tokenizer.h"

namespace mmgrad::data {

class BpeTokenizer : public Tokenizer {
 public:
  BpeTokenizer();  // bytes only, no merges

  // Learns merges from `corpus` until the vocabulary (bytes + merges + 3 special tokens)
  // reaches vocab_size. Deterministic: ties go to the pair with the smallest ids.
  static BpeTokenizer train(const std::vector<std::string>& corpus, int64_t vocab_size);

  std::vector<int64_t> encode(const std::string& text) const override;  // no special tokens
  // Special tokens are skipped; bytes that do not form valid UTF-8 (a token sequence can stop
  // inside a character) become U+FFFD, so the text is always valid.
  std::string decode(const std::vector<int64_t>& ids) const override;
  // The exact bytes of the tokens (decode_bytes(encode(s)) == s for any bytes).
  std::string decode_bytes(const std::vector<int64_t>& ids) const;

  int64_t vocab_size() const override { return 256 + static_cast<int64_t>(merges_.size()) + 3; }
  int64_t start_token() const override { return 256 + static_cast<int64_t>(merges_.size()); }
  int64_t end_token() const override { return start_token() + 1; }
  int64_t pad_token() const override { return start_token() + 2; }
  const std::vector<std::pair<int64_t, int64_t>>& merges() const { return merges_; }

  void save(const std::string& path) const;  // temp file + rename
  static BpeTokenizer load(const std::string& path);

  // The pre-tokenizer's chunks (exposed for tests).
  static std::vector<std::string> split_chunks(const std::string& text);

 private:
  void add_merge(int64_t a, int64_t b);
  std::vector<int64_t> encode_chunk(const std::string& chunk) const;

  std::vector<std::pair<int64_t, int64_t>> merges_;
  std::vector<std::string> token_bytes_;                 // id -> bytes (bytes and merges)
  std::unordered_map<uint64_t, int64_t> merge_rank_;     // (a, b) -> rank
};

}  // namespace mmgrad::data
