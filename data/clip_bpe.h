// Pretrained byte-level BPE vocabularies, so that a model can use (and be compared with) the
// tokenization of released CLIP checkpoints:
//   - ClipBpeTokenizer: OpenAI CLIP's merges file (bpe_simple_vocab_16e6.txt), tokenized as
//     OpenAI's simple_tokenizer.py does;
//   - HfBpeTokenizer: a Hugging Face tokenizer.json with a BPE model, of the two families in
//     use: GPT-2/RoBERTa byte-level BPE, and CLIP's (openai/clip-vit-base-patch32 and kin).
//
// Both work alike: the text is cleaned up, split into words, each word's UTF-8 bytes become
// GPT-2's printable stand-ins for bytes (bytes_to_unicode: a space is "Ġ"), CLIP's
// vocabularies mark the last symbol of a word with "</w>", and merges are applied by rank:
// the lowest-ranked adjacent pair first, all its occurrences at once, as the reference code
// does. Decoding maps the symbols back to bytes ("</w>" to a space).
//
// What is approximated, without ftfy, a Unicode database or a regex library:
//   - Character classes of the pre-tokenizer regexes (\p{L}, \p{N}, \s): ASCII exactly; above
//     ASCII, a table of known non-letters (Unicode whitespace; Latin-1 punctuation and
//     symbols; general punctuation; currency, letterlike and math symbols, arrows, box
//     drawing, dingbats; CJK punctuation, radicals, strokes, enclosed and compatibility
//     symbols (㎡); fullwidth forms; emoji; combining accents U+0300-036F; variation selectors,
//     format characters, private use; and the digits of Latin-1 (² ½), Arabic-Indic,
//     Devanagari, Thai, number forms, circled and fullwidth numbers). Every other code point
//     counts as a letter. This is exact (checked against Python's unicodedata) for ASCII,
//     Latin, Greek, Cyrillic, general punctuation to dingbats, CJK punctuation, fullwidth forms
//     and emoji; 2% of all assigned code points differ, mostly the combining vowel signs of
//     Indic and Southeast Asian scripts (one word here, split by the reference), their digits,
//     and rare symbols. Invalid UTF-8 bytes count as punctuation and encode losslessly.
//   - Lower-casing (CLIP): ASCII, Latin-1, Latin Extended-A, Latin Extended Additional
//     (Vietnamese), Greek (without the final-sigma rule), Cyrillic, Armenian, fullwidth A-Z;
//     "İ" becomes "i" + U+0307 as in Python. Other scripts are left as they are.
//   - OpenAI's clean-up (ftfy.fix_text, then html.unescape twice): HTML entities &amp; &lt;
//     &gt; &quot; &apos; &nbsp; (the first five also without ';', as html.unescape accepts)
//     and numeric ones (&#39; &#x27;, with Windows-1252 for 128-159 as browsers do); from
//     ftfy: curly quotes made straight, fullwidth ASCII made ASCII, Latin ligatures (ﬁ ...)
//     spelled out. Not done: mojibake repair and Unicode normalization.
//   - Unicode NFC (CLIP's tokenizer.json normalizer) is taken as already done: text in
//     decomposed form (rare: most text is composed) tokenizes differently.
//
// Special tokens: in the text, "<|startoftext|>" and "<|endoftext|>" (and a tokenizer.json's
// added tokens) are those tokens, as in the reference tokenizers.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "core/json.h"
#include "data/tokenizer.h"

namespace mmgrad::data {

// The shared machinery: vocabulary, merges, word encoding and decoding. Not made directly:
// see the two loaders below. Errors are mmgrad::Error with op "clip_bpe", naming the file.
class PretrainedBpeTokenizer : public Tokenizer {
 public:
  // Special tokens are skipped (a start token included), and nothing after the first
  // end-of-text token is decoded: that is padding (CLIP pads with id 0, which is the real
  // token "!"). With an end-of-word suffix ("</w>"), each one becomes a space and the text
  // is stripped. Invalid UTF-8 (a multi-byte character cut between tokens) becomes U+FFFD.
  // An id outside the vocabulary is an error naming it.
  std::string decode(const std::vector<int64_t>& ids) const override;

  int64_t vocab_size() const override { return static_cast<int64_t>(tokens_.size()); }
  int64_t start_token() const override { return start_; }
  int64_t end_token() const override { return end_; }
  int64_t pad_token() const override { return pad_; }

  // A token as the vocabulary spells it ("Ġ" for a space, "</w>" ending a word); "" for an
  // id that no token has.
  const std::string& token_text(int64_t id) const;
  int64_t token_id(const std::string& text) const;  // in the model vocabulary; -1 when absent
  int64_t merge_count() const { return merge_lines_; }
  const std::string& source() const { return source_; }  // the file it was loaded from

 protected:
  PretrainedBpeTokenizer() = default;

  struct Token {
    std::string text;
    bool known = false;    // ids may have gaps in a tokenizer.json
    bool special = false;  // skipped by decode
    bool raw = false;      // an added token outside the model vocabulary: decoded as text
  };
  struct Merge {
    int64_t rank;
    int64_t result;
  };

  // Loading. `where` names the file and line or entry for error messages.
  void set_token(int64_t id, const std::string& text, const std::string& where);
  void add_merge(const std::string& a, const std::string& b, const std::string& where);

  // Appends the ids of one pre-tokenized word (raw UTF-8, not yet byte-mapped).
  void encode_word(std::string_view word, std::vector<int64_t>& out) const;

  std::string source_;
  std::vector<Token> tokens_;                            // by id
  std::unordered_map<std::string, int64_t> ids_;         // model vocabulary: text -> id
  std::unordered_map<uint64_t, Merge> merges_;           // (left id, right id) -> merge
  std::unordered_map<std::string, int64_t> word_specials_;  // a whole word that is a special token
  std::string suffix_;                                   // "</w>" for CLIP, "" for GPT-2
  int64_t merge_lines_ = 0;                              // merges read (a merge's rank)
  int64_t unk_ = -1;                                     // for a symbol the vocabulary lacks
  bool fuse_unk_ = false;
  bool ignore_merges_ = false;  // a word that is a whole token is taken as it is (HF option)
  int64_t start_ = -1, end_ = -1, pad_ = 0;

 private:
  void apply_merges(std::vector<int64_t>& ids) const;
};

// OpenAI CLIP's merges file: a "#version" line, then one merge "a b" per line. As OpenAI
// does, the first 49152 - 256 - 2 = 48894 merges are used (a shorter file is used whole).
// Vocabulary: the 256 byte symbols, the same with "</w>", one token per merge, then
// <|startoftext|> and <|endoftext|>: 49408 tokens, start 49406, end 49407 with the full file.
// Padding is id 0, as OpenCLIP pads. The text is cleaned as simple_tokenizer.py does (see
// the top of this file), lower-cased, and split with CLIP's regex
//   <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// (a number is one token per digit). Only the plain-text file is read: OpenAI ships it
// gzip-compressed (.txt.gz), which is refused with a message saying to gunzip it.
class ClipBpeTokenizer final : public PretrainedBpeTokenizer {
 public:
  static constexpr int64_t kMaxMerges = 49152 - 256 - 2;

  static ClipBpeTokenizer load(const std::string& path);
  std::vector<int64_t> encode(const std::string& text) const override;  // no special tokens added

 private:
  ClipBpeTokenizer() = default;
};

// A Hugging Face tokenizer.json whose model is {"type": "BPE", "vocab": {...}, "merges": [...]}
// (merges written "a b" or ["a", "b"]). Supported:
//   - normalizer: none, or NFC (taken as done), Lowercase, Replace (a literal string, or the
//     regex \s+), and Sequence of these;
//   - pre_tokenizer: ByteLevel (GPT-2's regex when use_regex, add_prefix_space), optionally
//     after a Split with CLIP's regex (behavior Removed, invert true), in a Sequence;
//   - model options: end_of_word_suffix, unk_token, fuse_unk, ignore_merges; dropout only
//     null or 0; continuing_subword_prefix only null or "".
// Anything else (a WordPiece or Unigram model, another pre-tokenizer or normalizer, a
// byte_fallback model) is refused with an error naming the file and what is unsupported. The
// decoder and truncation/padding sections are not read.
// Added tokens (ids from the file) are cut out of the text before normalization; a word of
// CLIP's split that spells one (after lower-casing) is that token too.
// Special tokens: start/end are <|startoftext|>/<|endoftext|> when both exist (padding is then
// id 0, as for OpenAI's file); otherwise the cls/sep of a RobertaProcessing or BertProcessing
// post_processor (RoBERTa: <s>/</s>); otherwise <|endoftext|> for both (GPT-2). Padding is
// then "<pad>" when the vocabulary has it, else the end token.
class HfBpeTokenizer final : public PretrainedBpeTokenizer {
 public:
  static HfBpeTokenizer load(const std::string& path);
  std::vector<int64_t> encode(const std::string& text) const override;  // no special tokens added

 private:
  HfBpeTokenizer() = default;

  struct NormalizeStep {
    enum class Kind { Lowercase, ReplaceString, CollapseWhitespace } kind;
    std::string pattern, content;
  };
  void read_normalizer(const json::Value& v);
  void read_pre_tokenizer(const json::Value& v);
  void choose_special_tokens(const json::Value* post_processor);
  int64_t find_token(const std::string& text) const;  // in the vocabulary or the added tokens
  std::string normalize(std::string text) const;
  std::vector<std::string> pre_tokenize(const std::string& text) const;

  std::vector<NormalizeStep> normalize_steps_;
  bool clip_split_ = false;        // a Split with CLIP's regex comes first
  bool byte_level_regex_ = true;   // ByteLevel's use_regex: GPT-2's regex
  bool add_prefix_space_ = false;  // ByteLevel's add_prefix_space
  std::vector<std::pair<std::string, int64_t>> added_;  // added tokens, longest first
};

// ".json" files are tokenizer.json, anything else CLIP's merges file.
std::unique_ptr<Tokenizer> load_pretrained_tokenizer(const std::string& path);

// The text processing steps, exposed for tests.
namespace bpe_text {
std::string clip_clean(const std::string& text);  // OpenAI's basic_clean + whitespace_clean + lower
std::string lowercase(const std::string& text);
std::string html_unescape(const std::string& text);
std::vector<std::string> clip_words(const std::string& text);  // CLIP's regex
std::vector<std::string> gpt2_words(const std::string& text);  // GPT-2's regex
const std::string& byte_symbol(unsigned char byte);            // GPT-2's bytes_to_unicode
}  // namespace bpe_text

}  // namespace mmgrad::data
