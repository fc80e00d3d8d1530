// The JSON reader: values, escapes, and errors with byte offsets.
#include <gtest/gtest.h>

#include "core/json.h"
#include "tests/core/test_util.h"

using mmgrad::json::Value;

TEST(Json, ParsesNestedValues) {
  Value v = Value::parse(R"( {"a": [1, -2.5e3, true, false, null], "b": {"c": "d"}, "e": []} )");
  ASSERT_TRUE(v.is_object());
  const auto& a = v.find("a")->as_array("a");
  ASSERT_EQ(a.size(), 5u);
  EXPECT_EQ(a[0].as_int("a0"), 1);
  EXPECT_EQ(a[1].as_number("a1"), -2500.0);
  EXPECT_EQ(a[4].kind(), Value::Kind::Null);
  EXPECT_EQ(v.find("b")->find("c")->as_string("c"), "d");
  EXPECT_EQ(v.find("missing"), nullptr);
  EXPECT_EQ(v.as_object("root")[2].first, "e");  // file order
}

TEST(Json, StringEscapesAndUnicode) {
  Value v = Value::parse(R"(["a\"b\\c\/\n\t", "\u00e9\u20ac", "\ud83d\ude00"])");
  const auto& s = v.as_array("s");
  EXPECT_EQ(s[0].as_string("0"), "a\"b\\c/\n\t");
  EXPECT_EQ(s[1].as_string("1"), "\xc3\xa9\xe2\x82\xac");
  EXPECT_EQ(s[2].as_string("2"), "\xf0\x9f\x98\x80");
  EXPECT_EQ(mmgrad::json::quote("a\"b\\\n\x01"), "\"a\\\"b\\\\\\n\\u0001\"");
  EXPECT_EQ(Value::parse(mmgrad::json::quote("x\"y\\z\t")).as_string("q"), "x\"y\\z\t");
}

TEST(Json, ErrorsNameTheProblemAndOffset) {
  EXPECT_MMGRAD_ERROR(Value::parse("{\"a\" 1}"), "json", "expected ':'", "byte 5");
  EXPECT_MMGRAD_ERROR(Value::parse("[1, 2"), "json", "expected ']'");
  EXPECT_MMGRAD_ERROR(Value::parse("\"abc"), "json", "unterminated string");
  EXPECT_MMGRAD_ERROR(Value::parse("[01x]"), "json", "expected ']'");
  EXPECT_MMGRAD_ERROR(Value::parse("{\"k\":1,\"k\":2}"), "json", "duplicate key \"k\"");
  EXPECT_MMGRAD_ERROR(Value::parse("\"\\ud800\""), "json", "unpaired surrogate");
  EXPECT_MMGRAD_ERROR(Value::parse("1e999"), "json", "out of range");
  EXPECT_MMGRAD_ERROR(Value::parse("[] []"), "json", "after the JSON value");
  EXPECT_MMGRAD_ERROR(Value::parse(std::string(100, '[') + std::string(100, ']')), "json", "nesting");
  EXPECT_MMGRAD_ERROR(Value::parse("\"a\x01\""), "json", "control character");
  EXPECT_MMGRAD_ERROR(Value::parse("1.5").as_int("count"), "json", "count must be an integer");
  EXPECT_MMGRAD_ERROR(Value::parse("\"x\"").as_number("size"), "json", "size must be a number, not a string");
}
