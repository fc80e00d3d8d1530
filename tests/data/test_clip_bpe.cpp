// Pretrained BPE vocabularies: OpenAI CLIP's merges file and Hugging Face tokenizer.json files,
// checked on small vocabularies written here, with ids worked out by hand from each format's
// rules (CLIP: 256 bytes, the 256 with "</w>", one token per merge, then the two specials).
#include <gtest/gtest.h>

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "core/json.h"
#include "data/clip_bpe.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::data;
using Ids = std::vector<int64_t>;

namespace {

std::string write_file(const std::string& name, const std::string& content) {
  const std::string path = mmtest::temp_path(name);
  std::ofstream(path, std::ios::binary) << content;
  return path;
}

std::string utf8(int cp) {  // below U+0800 is all these tests need
  std::string s;
  if (cp < 0x80) {
    s += static_cast<char>(cp);
  } else {
    s += static_cast<char>(0xC0 | (cp >> 6));
    s += static_cast<char>(0x80 | (cp & 0x3F));
  }
  return s;
}

// GPT-2's bytes_to_unicode, written out again from its definition: the printable bytes ! to ~,
// ¡ to ¬ and ® to ÿ stand for themselves, the other 68, in byte order, for U+0100 onwards.
// In vocabulary order (the printable ones first), as CLIP and GPT-2 number them.
std::vector<std::string> byte_symbols() {
  std::vector<int> printable;
  for (int b = '!'; b <= '~'; ++b) printable.push_back(b);
  for (int b = 0xA1; b <= 0xAC; ++b) printable.push_back(b);
  for (int b = 0xAE; b <= 0xFF; ++b) printable.push_back(b);
  std::vector<std::string> out;
  for (int b : printable) out.push_back(utf8(b));
  int extra = 0;
  for (int b = 0; b < 256; ++b)
    if (std::find(printable.begin(), printable.end(), b) == printable.end()) out.push_back(utf8(256 + extra++));
  return out;
}

// Ids in the CLIP vocabulary of the byte symbols: printable ASCII c is c - 33, and the same
// with "</w>" 256 more.
constexpr int64_t byte_id(char c) { return c - 33; }
constexpr int64_t end_id(char c) { return 256 + c - 33; }

// Ranks 0-6, tokens 512-518: he, ll, hell, hello</w>, wo, rl, worl. Specials 519 and 520.
const std::vector<std::pair<std::string, std::string>> kMerges = {
    {"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o</w>"}, {"w", "o"}, {"r", "l"}, {"wo", "rl"}};
constexpr int64_t kHe = 512, kLl = 513, kHello = 515, kWorl = 518, kStart = 519, kEnd = 520;

std::string merges_file(const std::vector<std::pair<std::string, std::string>>& merges) {
  std::string s = "#version: 0.2\n";
  for (const auto& [a, b] : merges) s += a + " " + b + "\n";
  return s;
}

ClipBpeTokenizer small_clip() { return ClipBpeTokenizer::load(write_file("small_merges.txt", merges_file(kMerges))); }

// A tokenizer.json, its parts given as JSON text.
struct HfSpec {
  std::vector<std::string> vocab;  // the id is the index; "" leaves a gap
  std::vector<std::pair<std::string, std::string>> merges;
  bool merges_as_arrays = false;
  std::string model_type = "BPE";
  std::string model_options = R"("dropout": null, "unk_token": null, "continuing_subword_prefix": "", "end_of_word_suffix": "", "fuse_unk": false)";
  std::string added_tokens = "[]";
  std::string normalizer = "null";
  std::string pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true, "use_regex": true})";
  std::string post_processor = R"({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": false, "use_regex": true})";

  std::string json() const {
    std::string v;
    for (size_t id = 0; id < vocab.size(); ++id)
      if (!vocab[id].empty()) v += (v.empty() ? "" : ", ") + json::quote(vocab[id]) + ": " + std::to_string(id);
    std::string m;
    for (const auto& [a, b] : merges) {
      if (!m.empty()) m += ", ";
      m += merges_as_arrays ? "[" + json::quote(a) + ", " + json::quote(b) + "]" : json::quote(a + " " + b);
    }
    return "{\"version\": \"1.0\", \"truncation\": null, \"padding\": null, \"added_tokens\": " + added_tokens +
           ", \"normalizer\": " + normalizer + ", \"pre_tokenizer\": " + pre_tokenizer +
           ", \"post_processor\": " + post_processor + ", \"decoder\": {\"type\": \"ByteLevel\"}, \"model\": {\"type\": " +
           json::quote(model_type) + ", " + model_options + ", \"vocab\": {" + v + "}, \"merges\": [" + m + "]}}";
  }
};

// GPT-2 style: the 256 bytes, he 256, ll 257, hell 258, hello 259, Ġw 260, Ġwo 261, then the
// added token <|endoftext|> 262.
HfSpec gpt2_spec() {
  HfSpec s;
  s.vocab = byte_symbols();
  for (const char* t : {"he", "ll", "hell", "hello", "Ġw", "Ġwo"}) s.vocab.push_back(t);
  s.merges = {{"h", "e"}, {"l", "l"}, {"he", "ll"}, {"hell", "o"}, {"Ġ", "w"}, {"Ġw", "o"}};
  s.added_tokens = R"([{"id": 262, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": false, "special": true}])";
  return s;
}

// CLIP's tokenizer.json layout (openai/clip-vit-base-patch32) with kMerges.
HfSpec clip_spec() {
  HfSpec s;
  s.vocab = byte_symbols();
  for (int i = 0; i < 256; ++i) s.vocab.push_back(s.vocab[static_cast<size_t>(i)] + "</w>");
  for (const auto& [a, b] : kMerges) s.vocab.push_back(a + b);
  s.vocab.push_back("<|startoftext|>");
  s.vocab.push_back("<|endoftext|>");
  s.merges = kMerges;
  s.model_options = R"("dropout": null, "unk_token": "<|endoftext|>", "continuing_subword_prefix": "", "end_of_word_suffix": "</w>", "fuse_unk": false)";
  s.added_tokens = R"([{"id": 519, "special": true, "content": "<|startoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true},
                       {"id": 520, "special": true, "content": "<|endoftext|>", "single_word": false, "lstrip": false, "rstrip": false, "normalized": true}])";
  s.normalizer = R"({"type": "Sequence", "normalizers": [{"type": "NFC"}, {"type": "Replace", "pattern": {"Regex": "\\s+"}, "content": " "}, {"type": "Lowercase"}]})";
  s.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "<\\|startoftext\\|>|<\\|endoftext\\|>|'s|'t|'re|'ve|'m|'ll|'d|[\\p{L}]+|[\\p{N}]|[^\\s\\p{L}\\p{N}]+"}, "behavior": "Removed", "invert": true}, {"type": "ByteLevel", "add_prefix_space": false, "trim_offsets": true}]})";
  s.post_processor = R"({"type": "RobertaProcessing", "sep": ["<|endoftext|>", 520], "cls": ["<|startoftext|>", 519], "trim_offsets": false, "add_prefix_space": false})";
  return s;
}

HfBpeTokenizer load_hf(const std::string& name, const HfSpec& spec) {
  return HfBpeTokenizer::load(write_file(name, spec.json()));
}

}  // namespace

// ------------------------------------------------------------------------- OpenAI's merges file

TEST(ClipBpe, VocabularyLayoutFollowsOpenAI) {
  ClipBpeTokenizer tok = small_clip();
  EXPECT_EQ(tok.vocab_size(), 256 + 256 + 7 + 2);
  EXPECT_EQ(tok.start_token(), kStart);
  EXPECT_EQ(tok.end_token(), kEnd);
  EXPECT_EQ(tok.pad_token(), 0);  // as OpenCLIP pads
  EXPECT_EQ(tok.merge_count(), 7);
  EXPECT_EQ(tok.token_text(0), "!");
  EXPECT_EQ(tok.token_text(byte_id('a')), "a");
  EXPECT_EQ(tok.token_text(188), "Ā");  // byte 0, the first non-printable byte
  EXPECT_EQ(tok.token_text(188 + 32), "Ġ");  // the space
  EXPECT_EQ(tok.token_text(end_id('a')), "a</w>");
  EXPECT_EQ(tok.token_text(kHe), "he");
  EXPECT_EQ(tok.token_text(kHello), "hello</w>");
  EXPECT_EQ(tok.token_text(kStart), "<|startoftext|>");
  EXPECT_EQ(tok.token_id("worl"), kWorl);
  EXPECT_EQ(tok.token_id("nope"), -1);
}

TEST(ClipBpe, EncodesWithMergesByRankAndEndOfWordMarks) {
  ClipBpeTokenizer tok = small_clip();
  EXPECT_EQ(tok.encode("hello"), (Ids{kHello}));
  // w o r l d</w>: "w o" and "r l", then "wo rl"; "d</w>" stays.
  EXPECT_EQ(tok.encode("world"), (Ids{kWorl, end_id('d')}));
  // "l l" merges two plain l's, never "l l</w>".
  EXPECT_EQ(tok.encode("hell"), (Ids{kHe, byte_id('l'), end_id('l')}));
  EXPECT_EQ(tok.encode("lll"), (Ids{kLl, end_id('l')}));
  EXPECT_EQ(tok.encode("llll"), (Ids{kLl, byte_id('l'), end_id('l')}));
  // Punctuation runs, one token per digit, contractions.
  EXPECT_EQ(tok.encode("hello, world!"), (Ids{kHello, end_id(','), kWorl, end_id('d'), end_id('!')}));
  EXPECT_EQ(tok.encode("42"), (Ids{end_id('4'), end_id('2')}));
  EXPECT_EQ(tok.encode("it's"), (Ids{byte_id('i'), end_id('t'), byte_id('\''), end_id('s')}));
  // é is bytes C3 A9: C3 is the 128th printable byte, A9 the 103rd.
  EXPECT_EQ(tok.encode("\xC3\xA9"), (Ids{127, 256 + 102}));
  // Byte 1 is the second non-printable byte (id 188 + 1), here the end of its word.
  EXPECT_EQ(tok.encode(std::string("a\x01" "b")), (Ids{end_id('a'), 256 + 189, end_id('b')}));
  // The special tokens written in the text are those tokens.
  EXPECT_EQ(tok.encode("<|startoftext|>hello<|endoftext|>"), (Ids{kStart, kHello, kEnd}));
  EXPECT_EQ(tok.encode(""), Ids{});
  EXPECT_EQ(tok.encode(" \n\t "), Ids{});
}

TEST(ClipBpe, LowerCasesAndCleansWhitespaceAndEntities) {
  ClipBpeTokenizer tok = small_clip();
  const Ids hello_world = {kHello, kWorl, end_id('d')};
  EXPECT_EQ(tok.encode("  HeLLo \t\n  WORLD\xC2\xA0 "), hello_world);
  EXPECT_EQ(tok.encode("hello&amp;world"), (Ids{kHello, end_id('&'), kWorl, end_id('d')}));
  EXPECT_EQ(tok.encode("hello &amp;amp; world"), (Ids{kHello, end_id('&'), kWorl, end_id('d')}));  // unescaped twice
  // A curly apostrophe is straightened, so the contraction splits as OpenAI's (ftfy) does.
  EXPECT_EQ(tok.encode("it\xE2\x80\x99s"), tok.encode("it's"));
  EXPECT_EQ(tok.encode("it&#8217;s"), tok.encode("it's"));
  // Fullwidth letters become ASCII.
  EXPECT_EQ(tok.encode("\xEF\xBC\xA8\xEF\xBD\x85llo"), (Ids{kHello}));
}

TEST(ClipBpe, RealMergesFilePrefixGivesCLIPsIds) {
  // The first 28 merges of OpenAI's bpe_simple_vocab_16e6.txt: the ids of these words are
  // the ones CLIP uses (a 320, the 518, and 537, of 539).
  const std::string first_merges =
      "#version: 0.2\ni n\nt h\na n\nr e\na r\ne r\nth e</w>\nin g</w>\no u\no n\ns t\no r\ne n\no n</w>\na l\n"
      "a t\ne r</w>\ni t\ni n</w>\nt o</w>\nr o\ni s</w>\nl e\ni c\na t</w>\nan d</w>\ne d</w>\no f</w>\n";
  ClipBpeTokenizer tok = ClipBpeTokenizer::load(write_file("clip_prefix.txt", first_merges));
  // photo: only "t o</w>" (531) applies; cat: "a t</w>" (536); dog: none.
  EXPECT_EQ(tok.encode("A photo of the cat, and a dog."),
            (Ids{320, byte_id('p'), byte_id('h'), byte_id('o'), 531, 539, 518, byte_id('c'), 536, end_id(','), 537, 320,
                 byte_id('d'), byte_id('o'), end_id('g'), end_id('.')}));
  // s t r i n g</w>: "i n" (rank 0) first, then "in g</w>" (7), then "s t" (10).
  EXPECT_EQ(tok.encode("string"), (Ids{512 + 10, byte_id('r'), 512 + 7}));
  EXPECT_EQ(tok.start_token(), 512 + 28);
}

TEST(ClipBpe, DecodesToLowerCasedWordsAndSkipsSpecialsAndPadding) {
  ClipBpeTokenizer tok = small_clip();
  EXPECT_EQ(tok.decode(tok.encode("Hello,   World!")), "hello , world !");  // CLIP spaces punctuation
  EXPECT_EQ(tok.decode({kStart, kHello, kWorl, end_id('d'), kEnd, 0, 0, 0}), "hello world");
  EXPECT_EQ(tok.decode({kHello, kStart, kHello}), "hello hello");
  EXPECT_EQ(tok.decode(tok.encode("caf\xC3\xA9 \xF0\x9F\x98\x80")), "caf\xC3\xA9 \xF0\x9F\x98\x80");
  // A character cut between tokens decodes to U+FFFD instead of invalid UTF-8.
  EXPECT_EQ(tok.decode({127}), "\xEF\xBF\xBD");
  EXPECT_MMGRAD_ERROR(tok.decode({kHello, 9999}), "clip_bpe", "token id 9999", "small_merges.txt");
  EXPECT_MMGRAD_ERROR(tok.decode({-1}), "clip_bpe", "token id -1");
}

TEST(ClipBpe, BatchesStartWithStartEndWithEndAndPadWithZero) {
  ClipBpeTokenizer tok = small_clip();
  Tensor ids = tok.encode_batch({"hello world", "Hello hello hello hello", "hello hello hello hello hello"}, 6);
  EXPECT_EQ(ids.shape(), (Shape{3, 6}));
  EXPECT_EQ(to_vector<int64_t>(ids), (Ids{kStart, kHello, kWorl, end_id('d'), kEnd, 0,         //
                                          kStart, kHello, kHello, kHello, kHello, kEnd,        //
                                          kStart, kHello, kHello, kHello, kHello, kEnd}));     // truncated
  std::vector<int64_t> row0 = to_vector<int64_t>(ids);
  row0.resize(6);
  EXPECT_EQ(tok.decode(row0), "hello world");
}

TEST(ClipBpe, FileErrorsNameTheFileAndLine) {
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(mmtest::temp_path("no_such_merges.txt")), "clip_bpe", "cannot open",
                      "no_such_merges.txt");
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(write_file("empty_merges.txt", "")), "clip_bpe", "empty_merges.txt",
                      "is empty");
  const std::string dir = mmtest::temp_path("merges_dir");
  std::filesystem::create_directories(dir);
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(dir), "clip_bpe", "merges_dir", "folder");
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(write_file("gz_merges.txt.gz", std::string("\x1f\x8b\x08\x00rest", 8))),
                      "clip_bpe", "gz_merges.txt.gz", "gzip", "gunzip");
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(write_file("headless.txt", "h e\nl l\n")), "clip_bpe", "headless.txt",
                      "line 1", "#version");
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(write_file("three.txt", "#version: 0.2\nh e\nl l x\n")), "clip_bpe",
                      "three.txt' line 3", "l l x");
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(write_file("one.txt", "#version: 0.2\nh e\n\nl l\n")), "clip_bpe",
                      "one.txt' line 3", "two symbols");
  EXPECT_MMGRAD_ERROR(ClipBpeTokenizer::load(write_file("unknown.txt", "#version: 0.2\nh e\nhe zz\n")), "clip_bpe",
                      "unknown.txt' line 3", "'zz'", "not in the vocabulary");
}

TEST(ClipBpe, TakesAtMostOpenAIsMergeCountAndToleratesCrlf) {
  std::string s = "#version: 0.2\r\n";
  for (int64_t i = 0; i < ClipBpeTokenizer::kMaxMerges; ++i) s += "h e\r\n";
  s += "this line is past the merges used and is never read\r\n";
  ClipBpeTokenizer tok = ClipBpeTokenizer::load(write_file("long_merges.txt", s));
  EXPECT_EQ(tok.merge_count(), 48894);
  EXPECT_EQ(tok.vocab_size(), 49408);
  EXPECT_EQ(tok.start_token(), 49406);
  EXPECT_EQ(tok.end_token(), 49407);
  // "h e" repeated: the pair takes its last rank, and "he" its last id (OpenAI's dicts).
  EXPECT_EQ(tok.encode("he"), (Ids{byte_id('h'), end_id('e')}));
  EXPECT_EQ(tok.encode("hex"), (Ids{49405, end_id('x')}));
}

// ----------------------------------------------------------------------- text processing steps

TEST(BpeText, ClipCleanUp) {
  EXPECT_EQ(bpe_text::clip_clean("  A&amp;B &lt;3 \n\t \xC3\x9C" "ber  \xE2\x80\x9CQuote\xE2\x80\x9D don\xE2\x80\x99t \xEF\xAC\x81ne "),
            "a&b <3 \xC3\xBC" "ber \"quote\" don't fine");
  EXPECT_EQ(bpe_text::html_unescape("&amp;amp; &#39; &#x27; &#8217; &#150; &ampx &apos &apos; &bogus; & &#; &lt3"),
            "&amp; ' ' \xE2\x80\x99 \xE2\x80\x93 &x &apos ' &bogus; & &#; <3");
  EXPECT_EQ(bpe_text::html_unescape("&#0; &#x110000; &#1;x"), "\xEF\xBF\xBD \xEF\xBF\xBD x");
  EXPECT_EQ(bpe_text::clip_clean("&amp;amp;"), "&");
}

TEST(BpeText, LowerCasing) {
  EXPECT_EQ(bpe_text::lowercase("ABC xyz \xC3\x80\xC3\x89\xC3\x8E \xC3\x97"), "abc xyz \xC3\xA0\xC3\xA9\xC3\xAE \xC3\x97");
  EXPECT_EQ(bpe_text::lowercase("\xC4\x80\xC5\x81\xC5\xB8"), "\xC4\x81\xC5\x82\xC3\xBF");           // Ā Ł Ÿ
  EXPECT_EQ(bpe_text::lowercase("\xCE\x91\xCE\xA9\xCE\x86 \xD0\x94\xD0\xAF\xD0\x81"),                // Α Ω Ά Д Я Ё
            "\xCE\xB1\xCF\x89\xCE\xAC \xD0\xB4\xD1\x8F\xD1\x91");
  EXPECT_EQ(bpe_text::lowercase("\xC4\xB0"), "i\xCC\x87");                                             // İ as Python
  EXPECT_EQ(bpe_text::lowercase("\xE1\xBA\xA0\xE1\xBA\x9E"), "\xE1\xBA\xA1\xC3\x9F");                  // Ạ ẞ
  EXPECT_EQ(bpe_text::lowercase(std::string("A\xFF" "B", 3)), std::string("a\xFF" "b", 3));           // invalid kept
}

TEST(BpeText, ClipRegexSplit) {
  using W = std::vector<std::string>;
  EXPECT_EQ(bpe_text::clip_words("it's a 2024 photo!!! of <|endoftext|> cats..."),
            (W{"it", "'s", "a", "2", "0", "2", "4", "photo", "!!!", "of", "<|endoftext|>", "cats", "..."}));
  EXPECT_EQ(bpe_text::clip_words("don't 'sam !'s"), (W{"don", "'t", "'s", "am", "!'", "s"}));
  EXPECT_EQ(bpe_text::clip_words("caf\xC3\xA9 hi\xF0\x9F\x98\x80there a\xE2\x80\x94" "b x\xC2\xB2 \xEF\xBC\x91\xEF\xBC\x92"),
            (W{"caf\xC3\xA9", "hi", "\xF0\x9F\x98\x80", "there", "a", "\xE2\x80\x94", "b", "x", "\xC2\xB2",
               "\xEF\xBC\x91", "\xEF\xBC\x92"}));
  EXPECT_EQ(bpe_text::clip_words("a\xC2\xA0" "b\xE3\x80\x80" "c"), (W{"a", "b", "c"}));  // NBSP, ideographic space
  EXPECT_EQ(bpe_text::clip_words("2\xE3\x8E\xA1\xE4\xB8\xAD\xE6\x96\x87\xE3\x80\x82"),  // 2㎡中文。
            (W{"2", "\xE3\x8E\xA1", "\xE4\xB8\xAD\xE6\x96\x87", "\xE3\x80\x82"}));
}

TEST(BpeText, Gpt2RegexSplit) {
  using W = std::vector<std::string>;
  EXPECT_EQ(bpe_text::gpt2_words("Hello world's  2024!!\n"), (W{"Hello", " world", "'s", " ", " 2024", "!!", "\n"}));
  EXPECT_EQ(bpe_text::gpt2_words("a\n\nb 's x  "), (W{"a", "\n", "\n", "b", " '", "s", " x", "  "}));
  EXPECT_EQ(bpe_text::gpt2_words(" "), (W{" "}));
}

TEST(BpeText, ByteSymbolsAreGpt2s) {
  // The same 256 symbols as the definition written out above, all distinct.
  std::vector<std::string> ours, reference = byte_symbols();
  for (int b = 0; b < 256; ++b) ours.push_back(bpe_text::byte_symbol(static_cast<unsigned char>(b)));
  std::sort(ours.begin(), ours.end());
  std::sort(reference.begin(), reference.end());
  EXPECT_EQ(ours, reference);
  EXPECT_EQ(std::unique(ours.begin(), ours.end()), ours.end());
  EXPECT_EQ(bpe_text::byte_symbol(' '), "Ġ");
  EXPECT_EQ(bpe_text::byte_symbol('a'), "a");
  EXPECT_EQ(bpe_text::byte_symbol('\n'), "Ċ");
  EXPECT_EQ(bpe_text::byte_symbol(0xAD), "Ń");  // the last non-printable byte
  EXPECT_EQ(bpe_text::byte_symbol(0xFF), "\xC3\xBF");
}

// ------------------------------------------------------------------- Hugging Face tokenizer.json

TEST(HfBpe, Gpt2StyleByteLevel) {
  HfBpeTokenizer tok = load_hf("gpt2.json", gpt2_spec());
  EXPECT_EQ(tok.vocab_size(), 263);
  EXPECT_EQ(tok.start_token(), 262);
  EXPECT_EQ(tok.end_token(), 262);
  EXPECT_EQ(tok.pad_token(), 262);  // no <pad>: the end token
  EXPECT_EQ(tok.token_text(220), "Ġ");  // GPT-2's famous space
  // "hello", " world": Ġ w o, merged by "Ġ w" and "Ġw o"; r l d stay bytes.
  EXPECT_EQ(tok.encode("hello world"), (Ids{259, 261, byte_id('r'), byte_id('l'), byte_id('d')}));
  EXPECT_EQ(tok.encode("  hello"), (Ids{220, 220, 259}));  // " ", then " hello" is Ġ + hello
  EXPECT_EQ(tok.encode("Hello"), (Ids{byte_id('H'), byte_id('e'), 257, byte_id('o')}));  // no lower-casing
  EXPECT_EQ(tok.encode("hello<|endoftext|>world"),
            (Ids{259, 262, byte_id('w'), byte_id('o'), byte_id('r'), byte_id('l'), byte_id('d')}));
  for (const std::string& s : {std::string("Hello world's  2024!!\n"), std::string("caf\xC3\xA9 \xF0\x9F\x98\x80  x"),
                               std::string("\t tabs\r\n"), std::string("")})
    EXPECT_EQ(tok.decode(tok.encode(s)), s);  // lossless, spaces kept
  EXPECT_EQ(tok.decode({262, 259, 261, 262, 262, 262}), "hello wo");
  EXPECT_MMGRAD_ERROR(tok.decode({263}), "clip_bpe", "token id 263", "gpt2.json");
}

TEST(HfBpe, MergesWrittenAsPairsGiveTheSameTokens) {
  HfSpec spec = gpt2_spec();
  HfBpeTokenizer strings = load_hf("gpt2_strings.json", spec);
  spec.merges_as_arrays = true;
  HfBpeTokenizer arrays = load_hf("gpt2_arrays.json", spec);
  EXPECT_EQ(arrays.merge_count(), 6);
  for (const char* s : {"hello world", " hello  wow", "hellohello"})
    EXPECT_EQ(arrays.encode(s), strings.encode(s));
}

TEST(HfBpe, RobertaStyleSpecialsComeFromThePostProcessor) {
  HfSpec spec = gpt2_spec();
  spec.added_tokens = R"([{"id": 262, "content": "<s>", "special": true}, {"id": 263, "content": "<pad>", "special": true},
                          {"id": 264, "content": "</s>", "special": true}])";
  spec.post_processor = R"({"type": "RobertaProcessing", "sep": ["</s>", 264], "cls": ["<s>", 262], "trim_offsets": true, "add_prefix_space": false})";
  spec.pre_tokenizer = R"({"type": "ByteLevel", "add_prefix_space": true, "trim_offsets": true})";
  HfBpeTokenizer tok = load_hf("roberta.json", spec);
  EXPECT_EQ(tok.start_token(), 262);
  EXPECT_EQ(tok.end_token(), 264);
  EXPECT_EQ(tok.pad_token(), 263);
  // add_prefix_space: "world" is read as " world".
  EXPECT_EQ(tok.encode("world"), (Ids{261, byte_id('r'), byte_id('l'), byte_id('d')}));
  Tensor batch = tok.encode_batch({"world"}, 7);
  EXPECT_EQ(to_vector<int64_t>(batch), (Ids{262, 261, byte_id('r'), byte_id('l'), byte_id('d'), 264, 263}));
  EXPECT_EQ(tok.decode(to_vector<int64_t>(batch)), " world");
}

TEST(HfBpe, ClipTokenizerJsonMatchesTheMergesFile) {
  HfBpeTokenizer hf = load_hf("clip.json", clip_spec());
  ClipBpeTokenizer openai = small_clip();
  EXPECT_EQ(hf.vocab_size(), openai.vocab_size());
  EXPECT_EQ(hf.start_token(), kStart);
  EXPECT_EQ(hf.end_token(), kEnd);
  EXPECT_EQ(hf.pad_token(), 0);
  for (const char* s : {"hello world", "  HELLO,\n\tWorld!!  ", "it's 42 llll", "caf\xC3\xA9 \xF0\x9F\x98\x80",
                               "<|startoftext|>hello<|endoftext|>", "hell o", ""}) {
    SCOPED_TRACE(s);
    EXPECT_EQ(hf.encode(s), openai.encode(s));
    EXPECT_EQ(hf.decode(hf.encode(s)), openai.decode(openai.encode(s)));
  }
  EXPECT_EQ(to_vector<int64_t>(hf.encode_batch({"hello world"}, 6)), (Ids{kStart, kHello, kWorl, end_id('d'), kEnd, 0}));
}

TEST(HfBpe, UnknownSymbolsUseTheUnknownTokenOrFail) {
  HfSpec spec = gpt2_spec();
  spec.vocab[byte_id('~')] = "";  // the vocabulary lacks "~"
  spec.added_tokens = R"([{"id": 262, "content": "<|endoftext|>", "special": true}, {"id": 263, "content": "<unk>", "special": true}])";
  EXPECT_MMGRAD_ERROR(load_hf("no_tilde.json", spec).encode("a~"), "clip_bpe", "no_tilde.json", "'~'",
                      "no unknown token");
  spec.model_options = R"("unk_token": "<unk>", "fuse_unk": true)";
  HfBpeTokenizer tok = load_hf("unk.json", spec);
  EXPECT_EQ(tok.encode("a~~b"), (Ids{byte_id('a'), 263, byte_id('b')}));  // fused
  EXPECT_MMGRAD_ERROR(tok.decode({byte_id('~')}), "clip_bpe", "token id 93");  // a gap in the ids
}

TEST(HfBpe, UnsupportedTokenizersAreRefusedByName) {
  auto refused = [](const std::string& name, HfSpec spec, std::initializer_list<std::string> parts) {
    SCOPED_TRACE(name);
    const std::string path = write_file(name, spec.json());
    const std::string message = mmtest::expect_error([&] { HfBpeTokenizer::load(path); }, "clip_bpe", parts);
    EXPECT_NE(message.find(name), std::string::npos) << message;
  };
  HfSpec s = gpt2_spec();
  s.model_type = "WordPiece";
  refused("wordpiece.json", s, {"model type 'WordPiece'", "not supported"});
  s.model_type = "Unigram";
  refused("unigram.json", s, {"'Unigram'"});
  s = gpt2_spec();
  s.pre_tokenizer = R"({"type": "Whitespace"})";
  refused("whitespace.json", s, {"pre-tokenizer type 'Whitespace'"});
  s.pre_tokenizer = R"({"type": "Metaspace", "replacement": "▁"})";
  refused("metaspace.json", s, {"'Metaspace'"});
  s.pre_tokenizer = "null";
  refused("no_pre.json", s, {"no pre_tokenizer"});
  s.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [{"type": "Split", "pattern": {"Regex": "\\s+"}, "behavior": "Isolated", "invert": false}, {"type": "ByteLevel"}]})";
  refused("split.json", s, {"Split pre-tokenizer is not supported"});
  s.pre_tokenizer = R"({"type": "Sequence", "pretokenizers": [{"type": "ByteLevel"}, {"type": "Digits"}]})";
  refused("after.json", s, {"'Digits' after ByteLevel"});
  s = gpt2_spec();
  s.normalizer = R"({"type": "NFKC"})";
  refused("nfkc.json", s, {"normalizer type 'NFKC'"});
  s.normalizer = R"({"type": "Sequence", "normalizers": [{"type": "BertNormalizer"}]})";
  refused("bert_norm.json", s, {"'BertNormalizer'"});
  s.normalizer = R"({"type": "Replace", "pattern": {"Regex": "[0-9]+"}, "content": "#"})";
  refused("replace_regex.json", s, {"Replace", "pattern"});
  s = gpt2_spec();
  s.model_options = R"("continuing_subword_prefix": "##")";
  refused("prefix.json", s, {"continuing_subword_prefix", "##"});
  s.model_options = R"("dropout": 0.1)";
  refused("dropout.json", s, {"dropout"});
  s.model_options = R"("byte_fallback": true)";
  refused("fallback.json", s, {"byte_fallback"});
  s = gpt2_spec();
  s.added_tokens = "[]";
  refused("no_specials.json", s, {"no start and end tokens"});
}

TEST(HfBpe, BadFilesAndMergesAreErrorsNamingTheFile) {
  EXPECT_MMGRAD_ERROR(HfBpeTokenizer::load(mmtest::temp_path("none.json")), "clip_bpe", "cannot open", "none.json");
  EXPECT_MMGRAD_ERROR(HfBpeTokenizer::load(write_file("empty.json", "")), "clip_bpe", "empty.json", "is empty");
  EXPECT_MMGRAD_ERROR(HfBpeTokenizer::load(write_file("broken.json", "{\"model\": ")), "clip_bpe", "broken.json",
                      "not valid JSON");
  EXPECT_MMGRAD_ERROR(HfBpeTokenizer::load(write_file("nomodel.json", "{\"vocab\": {}}")), "clip_bpe", "nomodel.json",
                      "\"model\"");
  EXPECT_MMGRAD_ERROR(HfBpeTokenizer::load(write_file("badid.json", R"({"model": {"type": "BPE", "vocab": {"a": "x"}, "merges": []}})")),
                      "clip_bpe", "badid.json", "vocab id");
  HfSpec s = gpt2_spec();
  s.merges.push_back({"q", "z"});  // both bytes, but "qz" is not in the vocabulary
  EXPECT_MMGRAD_ERROR(load_hf("merge_result.json", s), "clip_bpe", "merge_result.json", "merges[6]", "'qz'",
                      "not in the vocabulary");
  s = gpt2_spec();
  s.merges.push_back({"hello", "xyz"});
  EXPECT_MMGRAD_ERROR(load_hf("merge_part.json", s), "clip_bpe", "merge_part.json", "merges[6]", "'xyz'");
  s = gpt2_spec();
  s.merges.push_back({"h e", "l"});  // written "h e l": three parts
  EXPECT_MMGRAD_ERROR(load_hf("merge_three.json", s), "clip_bpe", "merge_three.json", "merges[6]", "\"h e l\"");
  s = gpt2_spec();
  s.vocab.push_back("xyz");  // id 262, which is also the added token <|endoftext|>
  EXPECT_MMGRAD_ERROR(load_hf("dup_id.json", s), "clip_bpe", "dup_id.json", "id 262");
}

TEST(HfBpe, LoadPretrainedTokenizerChoosesByExtension) {
  std::unique_ptr<Tokenizer> json = load_pretrained_tokenizer(write_file("pick.json", gpt2_spec().json()));
  EXPECT_NE(dynamic_cast<HfBpeTokenizer*>(json.get()), nullptr);
  std::unique_ptr<Tokenizer> merges = load_pretrained_tokenizer(write_file("pick_merges.txt", merges_file(kMerges)));
  EXPECT_NE(dynamic_cast<ClipBpeTokenizer*>(merges.get()), nullptr);
  EXPECT_EQ(merges->encode("hello"), (Ids{kHello}));
}
