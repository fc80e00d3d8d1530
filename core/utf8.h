// UTF-8 encoding and strict decoding, shared by the JSON reader, the tokenizers and the
// caption-table reader.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace mmgrad::utf8 {

constexpr uint32_t kInvalid = 0x110000;  // stands for bytes that are not valid UTF-8

struct Char {
  uint32_t cp;  // the code point, or kInvalid
  size_t len;   // bytes consumed (at least 1)
};

// The character starting at byte i (i < s.size()). Strict: no overlong forms, surrogates or
// values past U+10FFFF. An invalid sequence spans the bytes that could still have begun a
// valid character, at least one (the "maximal subpart" rule that Python's errors="replace"
// follows, so each becomes one U+FFFD).
Char decode_at(std::string_view s, size_t i);

// Whether all of `s` is valid UTF-8 under decode_at's rules.
bool is_valid(std::string_view s);

// s with each invalid sequence replaced by U+FFFD (Python's errors="replace"), so that text
// decoded from byte-level tokens is always valid UTF-8 (and valid in JSON).
std::string replace_invalid(std::string_view s);

// Appends the encoding of code point cp (cp <= U+10FFFF).
void append(std::string& out, uint32_t cp);

}  // namespace mmgrad::utf8
