#include "data/bpe.h"

#include <algorithm>
#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <map>
#include <sstream>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/utf8.h"

namespace mmgrad::data {
namespace {

uint64_t pair_key(int64_t a, int64_t b) { return static_cast<uint64_t>(a) << 32 | static_cast<uint64_t>(b); }

enum class CharClass { Letter, Digit, Space, Other };
CharClass classify(unsigned char c) {
  if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c >= 0x80) return CharClass::Letter;  // UTF-8 bytes join words
  if (c >= '0' && c <= '9') return CharClass::Digit;
  if (c == ' ') return CharClass::Space;
  return CharClass::Other;
}

constexpr const char* kMagic = "mmgrad-bpe 1";

}  // namespace

BpeTokenizer::BpeTokenizer() {
  for (int b = 0; b < 256; ++b) token_bytes_.push_back(std::string(1, static_cast<char>(b)));
}

void BpeTokenizer::add_merge(int64_t a, int64_t b) {
  merge_rank_[pair_key(a, b)] = static_cast<int64_t>(merges_.size());
  merges_.emplace_back(a, b);
  token_bytes_.push_back(token_bytes_[a] + token_bytes_[b]);
}

std::vector<std::string> BpeTokenizer::split_chunks(const std::string& text) {
  std::vector<std::string> chunks;
  size_t i = 0;
  while (i < text.size()) {
    size_t start = i;
    // A single space attaches to the word that follows it.
    if (text[i] == ' ' && i + 1 < text.size() && classify(text[i + 1]) != CharClass::Space) ++i;
    CharClass k = classify(static_cast<unsigned char>(text[i]));
    ++i;
    if (k == CharClass::Letter || k == CharClass::Digit)
      while (i < text.size() && classify(static_cast<unsigned char>(text[i])) == k) ++i;
    if (k == CharClass::Space)  // a run of spaces leaves its last one to the word after it
      while (i + 1 < text.size() && text[i] == ' ' && text[i + 1] == ' ') ++i;
    chunks.push_back(text.substr(start, i - start));
  }
  return chunks;
}

BpeTokenizer BpeTokenizer::train(const std::vector<std::string>& corpus, int64_t vocab_size) {
  BpeTokenizer tok;
  if (vocab_size < tok.vocab_size())
    fail("bpe", fmt::format("vocab_size {} is below the {} byte and special tokens", vocab_size, tok.vocab_size()));
  // Distinct chunks with their counts, each as a sequence of token ids.
  std::map<std::string, int64_t> counts;
  for (const std::string& text : corpus)
    for (const std::string& c : split_chunks(text)) ++counts[c];
  std::vector<std::vector<int64_t>> words;
  std::vector<int64_t> freq;
  for (const auto& [chunk, n] : counts) {
    std::vector<int64_t> ids;
    for (unsigned char c : chunk) ids.push_back(c);
    words.push_back(std::move(ids));
    freq.push_back(n);
  }
  while (tok.vocab_size() < vocab_size) {
    std::unordered_map<uint64_t, int64_t> pairs;
    for (size_t w = 0; w < words.size(); ++w)
      for (size_t j = 0; j + 1 < words[w].size(); ++j) pairs[pair_key(words[w][j], words[w][j + 1])] += freq[w];
    if (pairs.empty()) break;  // every chunk is a single token: nothing left to merge
    uint64_t best = 0;
    int64_t best_count = -1;
    for (const auto& [key, n] : pairs)
      if (n > best_count || (n == best_count && key < best)) {
        best = key;
        best_count = n;
      }
    const int64_t a = static_cast<int64_t>(best >> 32), b = static_cast<int64_t>(best & 0xffffffffu);
    const int64_t merged = 256 + static_cast<int64_t>(tok.merges_.size());
    tok.add_merge(a, b);
    for (auto& ids : words) {
      std::vector<int64_t> out;
      for (size_t j = 0; j < ids.size(); ++j) {
        if (j + 1 < ids.size() && ids[j] == a && ids[j + 1] == b) {
          out.push_back(merged);
          ++j;
        } else {
          out.push_back(ids[j]);
        }
      }
      ids.swap(out);
    }
  }
  return tok;
}

std::vector<int64_t> BpeTokenizer::encode_chunk(const std::string& chunk) const {
  std::vector<int64_t> ids;
  for (unsigned char c : chunk) ids.push_back(c);
  // Apply the earliest-learned applicable merge until none applies.
  for (;;) {
    int64_t best_rank = -1;
    size_t at = 0;
    for (size_t j = 0; j + 1 < ids.size(); ++j) {
      auto it = merge_rank_.find(pair_key(ids[j], ids[j + 1]));
      if (it != merge_rank_.end() && (best_rank < 0 || it->second < best_rank)) {
        best_rank = it->second;
        at = j;
      }
    }
    if (best_rank < 0) return ids;
    ids[at] = 256 + best_rank;
    ids.erase(ids.begin() + static_cast<std::ptrdiff_t>(at) + 1);
  }
}

std::vector<int64_t> BpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& chunk : split_chunks(text)) {
    std::vector<int64_t> c = encode_chunk(chunk);
    ids.insert(ids.end(), c.begin(), c.end());
  }
  return ids;
}

std::string BpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  // Byte-level tokens can end inside a character (a model early in training emits any
  // sequence): such bytes become U+FFFD, so captions are valid UTF-8 wherever they go.
  return utf8::replace_invalid(decode_bytes(ids));
}

std::string BpeTokenizer::decode_bytes(const std::vector<int64_t>& ids) const {
  std::string out;
  for (int64_t id : ids) {
    if (id < 0 || id >= vocab_size())
      fail("bpe", fmt::format("token id {} is outside the vocabulary of {}", id, vocab_size()));
    if (id < static_cast<int64_t>(token_bytes_.size())) out += token_bytes_[id];
  }
  return out;
}

void BpeTokenizer::save(const std::string& path) const {
  write_file_atomically(path, "bpe", [&](std::ostream& out) {
    out << kMagic << "\n" << merges_.size() << "\n";
    for (const auto& [a, b] : merges_) out << a << " " << b << "\n";
  });
}

BpeTokenizer BpeTokenizer::load(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("bpe", "cannot open '" + path + "' (" + std::strerror(errno) + ")");
  std::string magic;
  std::getline(in, magic);
  if (magic != kMagic) fail("bpe", "'" + path + "' is not an mmgrad BPE file (first line: '" + magic.substr(0, 40) + "')");
  std::string line;
  std::getline(in, line);
  int64_t n = -1;
  try {
    n = std::stoll(line);
  } catch (const std::exception&) {
  }
  if (n < 0 || n > (int64_t(1) << 24)) fail("bpe", "'" + path + "': line 2 must be the number of merges");
  BpeTokenizer tok;
  for (int64_t i = 0; i < n; ++i) {
    if (!std::getline(in, line)) fail("bpe", fmt::format("'{}': ends after {} of {} merges", path, i, n));
    std::istringstream ls(line);
    int64_t a = -1, b = -1;
    std::string rest;
    if (!(ls >> a >> b) || (ls >> rest))
      fail("bpe", fmt::format("'{}' line {}: expected two token ids", path, i + 3));
    const int64_t known = 256 + i;  // a merge may only use tokens defined before it
    if (a < 0 || b < 0 || a >= known || b >= known)
      fail("bpe", fmt::format("'{}' line {}: merge ({}, {}) uses a token not defined yet", path, i + 3, a, b));
    tok.add_merge(a, b);
  }
  return tok;
}

}  // namespace mmgrad::data
