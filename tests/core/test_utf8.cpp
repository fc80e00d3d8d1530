// UTF-8 encoding and strict decoding (core/utf8.h).
#include <gtest/gtest.h>

#include "core/utf8.h"

using namespace mmgrad;

TEST(Utf8, EncodesAndDecodesEveryLength) {
  for (uint32_t cp : {0x24u, 0xE9u, 0x20ACu, 0x1F600u, 0x10FFFFu}) {
    std::string s;
    utf8::append(s, cp);
    EXPECT_EQ(s.size(), cp < 0x80 ? 1u : cp < 0x800 ? 2u : cp < 0x10000 ? 3u : 4u);
    const utf8::Char c = utf8::decode_at(s, 0);
    EXPECT_EQ(c.cp, cp);
    EXPECT_EQ(c.len, s.size());
    EXPECT_TRUE(utf8::is_valid(s));
  }
  EXPECT_EQ(std::string("\xE2\x82\xAC"), [] { std::string s; utf8::append(s, 0x20AC); return s; }());
}

TEST(Utf8, RejectsMalformedSequencesWithTheMaximalSubpart) {
  // Stray continuation, overlong forms, a surrogate, past U+10FFFF, cut short.
  for (const char* bad : {"\x80", "\xC0\xAF", "\xE0\x80\xAF", "\xED\xA0\x80", "\xF4\x90\x80\x80", "\xE2\x82"})
    EXPECT_FALSE(utf8::is_valid(bad)) << bad;
  EXPECT_EQ(utf8::decode_at("\xE2\x82" "A", 0).cp, utf8::kInvalid);
  EXPECT_EQ(utf8::decode_at("\xE2\x82" "A", 0).len, 2u);  // the valid prefix is one bad unit
  EXPECT_EQ(utf8::decode_at("\xED\xA0\x80", 0).len, 1u);   // a surrogate lead is bad alone
  EXPECT_TRUE(utf8::is_valid("plain ascii, caf\xC3\xA9"));
}
