// The byte-level BPE tokenizer: lossless round trips, known merges, batches, save/load.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "autograd/ops.h"
#include "core/utf8.h"
#include "data/bpe.h"
#include "tests/core/test_util.h"

using namespace mmgrad;
using namespace mmgrad::data;

namespace {
const std::vector<std::string> kCorpus = {
    "a red circle left of a blue square", "a small green triangle", "the blue square is above a red circle",
    "two circles, one red and one green", "a large red square right of a small blue circle"};
}  // namespace

TEST(Bpe, SplitsIntoWordsWithTheirLeadingSpace) {
  EXPECT_EQ(BpeTokenizer::split_chunks("a red,  42 cats!"),
            (std::vector<std::string>{"a", " red", ",", " ", " 42", " cats", "!"}));
}

TEST(Bpe, LearnsTheMostFrequentPairFirstAndIsDeterministic) {
  // "aaab" x3 and "ab": (a, a) occurs 6 times, (a, b) 4 times.
  BpeTokenizer tok = BpeTokenizer::train({"aaab aaab aaab", "ab"}, 256 + 2 + 3);
  ASSERT_EQ(tok.merges().size(), 2u);
  EXPECT_EQ(tok.merges()[0], (std::pair<int64_t, int64_t>{'a', 'a'}));
  BpeTokenizer again = BpeTokenizer::train({"aaab aaab aaab", "ab"}, 256 + 2 + 3);
  EXPECT_EQ(again.merges(), tok.merges());
  EXPECT_EQ(tok.vocab_size(), 261);
  EXPECT_EQ(tok.start_token(), 258);
  EXPECT_EQ(tok.end_token(), 259);
  EXPECT_EQ(tok.pad_token(), 260);
}

TEST(Bpe, RoundTripsAnyText) {
  BpeTokenizer tok = BpeTokenizer::train(kCorpus, 400);
  for (const std::string& s : {std::string("a red circle left of a blue square"), std::string("unseen words: zebra 123"),
                               std::string("caf\xc3\xa9 \xf0\x9f\x98\x80  double  spaces\n"), std::string(""),
                               std::string("\x00\xff\x01", 3)}) {
    EXPECT_EQ(tok.decode_bytes(tok.encode(s)), s);
    if (utf8::is_valid(s)) {
      EXPECT_EQ(tok.decode(tok.encode(s)), s);
    }
  }
  // Frequent words compress to few tokens.
  EXPECT_LE(tok.encode(" circle").size(), 2u);
  EXPECT_LT(tok.encode(kCorpus[0]).size(), kCorpus[0].size() / 2);
}

TEST(Bpe, DecodingPartOfACharacterGivesValidUtf8) {
  // Byte tokens: "é" is 0xC3 0xA9. Decoding only its first byte (as an untrained caption
  // decoder may emit) must not produce invalid UTF-8, which would break JSON and terminals.
  const BpeTokenizer tok = BpeTokenizer::train({"caf\xC3\xA9"}, 259);  // bytes and specials, no merges
  const std::vector<int64_t> ids = tok.encode("\xC3\xA9");
  ASSERT_FALSE(ids.empty());
  ASSERT_EQ(ids.size(), 2u);
  EXPECT_EQ(tok.decode({ids[0]}), "\xEF\xBF\xBD");
  EXPECT_EQ(tok.decode_bytes({ids[0]}), "\xC3");
  EXPECT_EQ(tok.decode(tok.encode("caf\xC3\xA9")), "caf\xC3\xA9");
}

TEST(Bpe, BatchesAddSpecialTokensPadAndTruncate) {
  BpeTokenizer tok = BpeTokenizer::train(kCorpus, 300);
  Tensor ids = tok.encode_batch({"a red circle", kCorpus[4] + " " + kCorpus[2]}, 8);
  EXPECT_EQ(ids.shape(), (Shape{2, 8}));
  std::vector<int64_t> v = to_vector<int64_t>(ids);
  std::vector<int64_t> body = tok.encode("a red circle");
  ASSERT_LE(body.size(), 6u);
  EXPECT_EQ(v[0], tok.start_token());
  EXPECT_EQ(std::vector<int64_t>(v.begin() + 1, v.begin() + 1 + body.size()), body);
  EXPECT_EQ(v[1 + body.size()], tok.end_token());
  for (size_t j = 2 + body.size(); j < 8; ++j) EXPECT_EQ(v[j], tok.pad_token());
  EXPECT_EQ(v[8], tok.start_token());
  EXPECT_EQ(v[15], tok.end_token());  // truncated, still ends with EOT
  EXPECT_EQ(tok.decode(std::vector<int64_t>(v.begin(), v.begin() + 8)), "a red circle");
}

TEST(Bpe, SaveAndLoadGiveTheSameTokenizer) {
  BpeTokenizer tok = BpeTokenizer::train(kCorpus, 350);
  std::string path = mmtest::temp_path("tok.bpe");
  tok.save(path);
  BpeTokenizer back = BpeTokenizer::load(path);
  EXPECT_EQ(back.merges(), tok.merges());
  for (const std::string& s : kCorpus) EXPECT_EQ(back.encode(s), tok.encode(s));
}

TEST(Bpe, BadFilesAndIdsAreErrors) {
  std::string path = mmtest::temp_path("bad.bpe");
  EXPECT_MMGRAD_ERROR(BpeTokenizer::load(mmtest::temp_path("none.bpe")), "bpe", "cannot open");
  std::ofstream(path) << "hello\n";
  EXPECT_MMGRAD_ERROR(BpeTokenizer::load(path), "bpe", "not an mmgrad BPE file");
  std::ofstream(path) << "mmgrad-bpe 1\n3\n97 97\n";
  EXPECT_MMGRAD_ERROR(BpeTokenizer::load(path), "bpe", "ends after 1 of 3 merges");
  std::ofstream(path) << "mmgrad-bpe 1\n1\n97 300\n";
  EXPECT_MMGRAD_ERROR(BpeTokenizer::load(path), "bpe", "line 3", "not defined yet");
  std::ofstream(path) << "mmgrad-bpe 1\n1\n97 x\n";
  EXPECT_MMGRAD_ERROR(BpeTokenizer::load(path), "bpe", "line 3", "two token ids");
  BpeTokenizer tok;
  EXPECT_MMGRAD_ERROR(tok.decode({5, 9999}), "bpe", "9999", "outside the vocabulary");
  EXPECT_MMGRAD_ERROR(BpeTokenizer::train(kCorpus, 100), "bpe", "below");
}
