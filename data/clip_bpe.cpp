#include "data/clip_bpe.h"

#include <algorithm>
#include <array>
#include <cctype>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <sstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/utf8.h"

namespace mmgrad::data {
namespace {

constexpr const char* kOp = "clip_bpe";
constexpr int64_t kMaxId = int64_t(1) << 24;  // ids fit in half a 64-bit pair key, with room
constexpr const char* kClipPattern =
    R"(<\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+)";
constexpr const char* kStartOfText = "<|startoftext|>";
constexpr const char* kEndOfText = "<|endoftext|>";

uint64_t pair_key(int64_t a, int64_t b) { return static_cast<uint64_t>(a) << 32 | static_cast<uint64_t>(b); }

// A short, printable excerpt of file content for an error message.
std::string excerpt(std::string_view s) { return s.size() <= 60 ? std::string(s) : std::string(s.substr(0, 60)) + "..."; }

// ------------------------------------------------------------------------------------ UTF-8

constexpr uint32_t kInvalid = utf8::kInvalid;

struct Unit {
  uint32_t cp;  // the code point, or kInvalid
  size_t begin;
  size_t len;
};

Unit decode_at(std::string_view s, size_t i) {
  const utf8::Char c = utf8::decode_at(s, i);
  return {c.cp, i, c.len};
}

std::vector<Unit> decode_units(std::string_view s) {
  std::vector<Unit> units;
  for (size_t i = 0; i < s.size();) {
    units.push_back(decode_at(s, i));
    i += units.back().len;
  }
  return units;
}

// Rewrites text one code point at a time with f(cp, out); invalid bytes are kept as they are,
// so that cleaning never loses them (byte-level BPE encodes any bytes).
template <typename F>
std::string map_code_points(std::string_view s, F&& f) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    const Unit u = decode_at(s, i);
    if (u.cp == kInvalid) out.append(s.substr(i, u.len));
    else f(u.cp, out);
    i += u.len;
  }
  return out;
}

std::string replace_invalid_utf8(std::string_view s) { return utf8::replace_invalid(s); }

// ------------------------------------------------------------------------- character classes

// What the pre-tokenizer regexes call \p{L}, \p{N} and \s (anything else is "other").
enum class CharClass { Letter, Number, Space, Other };

struct ClassRange {
  uint32_t lo, hi;
  CharClass cls;
};

// The non-ASCII code points that are not letters, sorted and disjoint; every other one above
// ASCII counts as a letter. Ranges follow the Unicode general categories of the blocks named.
constexpr CharClass O = CharClass::Other, N = CharClass::Number, S = CharClass::Space;
constexpr ClassRange kNonLetters[] = {
    // Latin-1: C1 controls, NEL, NBSP, punctuation and symbols, superscripts, fractions.
    {0x80, 0x84, O}, {0x85, 0x85, S}, {0x86, 0x9F, O}, {0xA0, 0xA0, S}, {0xA1, 0xA9, O}, {0xAB, 0xB1, O},
    {0xB2, 0xB3, N}, {0xB4, 0xB4, O}, {0xB6, 0xB8, O}, {0xB9, 0xB9, N}, {0xBB, 0xBB, O}, {0xBC, 0xBE, N},
    {0xBF, 0xBF, O}, {0xD7, 0xD7, O}, {0xF7, 0xF7, O},
    // Modifier symbols, combining diacritical marks (accents in decomposed text), Greek signs.
    {0x2C2, 0x2C5, O}, {0x2D2, 0x2DF, O}, {0x2E5, 0x2EB, O}, {0x2ED, 0x2ED, O}, {0x2EF, 0x36F, O},
    {0x375, 0x375, O}, {0x37E, 0x37E, O}, {0x384, 0x385, O}, {0x387, 0x387, O}, {0x3F6, 0x3F6, O},
    {0x482, 0x489, O},  // Cyrillic thousands sign and combining marks
    // Arabic punctuation and digits, Devanagari danda and digits, Thai digits.
    {0x60C, 0x60C, O}, {0x61B, 0x61B, O}, {0x61F, 0x61F, O}, {0x660, 0x669, N}, {0x66A, 0x66D, O},
    {0x6D4, 0x6D4, O}, {0x6F0, 0x6F9, N}, {0x964, 0x965, O}, {0x966, 0x96F, N}, {0xE50, 0xE59, N},
    // Spaces, general punctuation (dashes, quotes, bullets, zero-width and format characters).
    {0x1680, 0x1680, S}, {0x2000, 0x200A, S}, {0x200B, 0x2027, O}, {0x2028, 0x2029, S}, {0x202A, 0x202E, O},
    {0x202F, 0x202F, S}, {0x2030, 0x205E, O}, {0x205F, 0x205F, S}, {0x2060, 0x206F, O},
    // Superscript and subscript digits and signs, currency, combining marks for symbols.
    {0x2070, 0x2070, N}, {0x2074, 0x2079, N}, {0x207A, 0x207E, O}, {0x2080, 0x2089, N}, {0x208A, 0x208E, O},
    {0x20A0, 0x20FF, O},
    // Letterlike symbols that are symbols (℃ № ™ ...), number forms (Ⅻ ½).
    {0x2100, 0x2101, O}, {0x2103, 0x2106, O}, {0x2108, 0x2109, O}, {0x2114, 0x2114, O}, {0x2116, 0x2118, O},
    {0x211E, 0x2123, O}, {0x2125, 0x2125, O}, {0x2127, 0x2127, O}, {0x2129, 0x2129, O}, {0x212E, 0x212E, O},
    {0x213A, 0x213B, O}, {0x2140, 0x2144, O}, {0x214A, 0x214D, O}, {0x214F, 0x214F, O}, {0x2150, 0x2182, N},
    {0x2185, 0x2189, N}, {0x218A, 0x218B, O},
    // Arrows, mathematical operators, technical, enclosed alphanumerics (① is a number),
    // box drawing, shapes, miscellaneous symbols, dingbats (➊ is a number), braille.
    {0x2190, 0x245F, O}, {0x2460, 0x249B, N}, {0x249C, 0x24E9, O}, {0x24EA, 0x24FF, N}, {0x2500, 0x2775, O},
    {0x2776, 0x2793, N}, {0x2794, 0x2BFF, O}, {0x2E00, 0x2E2E, O},
    {0x2E30, 0x2E7F, O}, {0x2E80, 0x2FFF, O},  // supplemental punctuation, CJK radicals
    // CJK symbols and punctuation (〇 and the Hangzhou numerals are numbers), kana marks, kanbun,
    // CJK strokes.
    {0x3000, 0x3000, S}, {0x3001, 0x3004, O}, {0x3007, 0x3007, N}, {0x3008, 0x3020, O}, {0x3021, 0x3029, N},
    {0x302A, 0x3030, O}, {0x3036, 0x3037, O}, {0x3038, 0x303A, N}, {0x303D, 0x303F, O}, {0x3099, 0x309C, O},
    {0x30A0, 0x30A0, O}, {0x30FB, 0x30FB, O}, {0x3190, 0x3191, O}, {0x3192, 0x3195, N}, {0x3196, 0x319F, O},
    {0x31C0, 0x31EF, O},
    // Enclosed CJK letters and months (circled numbers are numbers), CJK compatibility (㎡ ㎏).
    {0x3200, 0x321F, O}, {0x3220, 0x3229, N}, {0x322A, 0x3247, O}, {0x3248, 0x324F, N}, {0x3250, 0x3250, O},
    {0x3251, 0x325F, N}, {0x3260, 0x327F, O}, {0x3280, 0x3289, N}, {0x328A, 0x32B0, O}, {0x32B1, 0x32BF, N},
    {0x32C0, 0x33FF, O}, {0x4DC0, 0x4DFF, O},  // ..., hexagram symbols
    // Variation selectors, vertical and small forms, BOM, fullwidth punctuation and digits.
    {0xE000, 0xF8FF, O},  // private use
    {0xFE00, 0xFE6F, O}, {0xFEFF, 0xFEFF, O}, {0xFF01, 0xFF0F, O}, {0xFF10, 0xFF19, N}, {0xFF1A, 0xFF20, O},
    {0xFF3B, 0xFF40, O}, {0xFF5B, 0xFF65, O}, {0xFFE0, 0xFFEE, O}, {0xFFF9, 0xFFFD, O},
    // Emoji and other pictographs (🄁 digit-comma forms are numbers), tags (flag sequences).
    {0x1F000, 0x1F0FF, O}, {0x1F100, 0x1F10C, N}, {0x1F10D, 0x1FAFF, O}, {0xE0000, 0xE007F, O},
    {0xE0100, 0xE01EF, O}, {0xF0000, 0x10FFFF, O},  // ..., private use
};

constexpr bool sorted_and_disjoint(const ClassRange* r, size_t n) {
  for (size_t i = 0; i < n; ++i) {
    if (r[i].lo > r[i].hi) return false;
    if (i > 0 && r[i].lo <= r[i - 1].hi) return false;
  }
  return true;
}
static_assert(sorted_and_disjoint(kNonLetters, std::size(kNonLetters)), "kNonLetters must be sorted");

CharClass classify(uint32_t cp) {
  if (cp < 0x80) {
    if ((cp >= 'a' && cp <= 'z') || (cp >= 'A' && cp <= 'Z')) return CharClass::Letter;
    if (cp >= '0' && cp <= '9') return CharClass::Number;
    if (cp == ' ' || (cp >= 0x09 && cp <= 0x0D) || (cp >= 0x1C && cp <= 0x1F)) return CharClass::Space;
    return CharClass::Other;
  }
  if (cp == kInvalid) return CharClass::Other;
  const auto* end = std::end(kNonLetters);
  const auto* it = std::upper_bound(std::begin(kNonLetters), end, cp,
                                    [](uint32_t c, const ClassRange& r) { return c < r.lo; });
  if (it != std::begin(kNonLetters) && cp <= (it - 1)->hi) return (it - 1)->cls;
  return CharClass::Letter;
}

// ------------------------------------------------------------------------------ lower-casing

// Upper-case ranges: a fixed offset to the lower case, or alternating pairs where the upper
// case is the even (or odd) code point and the lower case the next one.
enum class CaseRule { Offset, EvenUpper, OddUpper };
struct CaseRange {
  uint32_t lo, hi;
  CaseRule rule;
  int32_t offset;
};
constexpr CaseRange kUpperCase[] = {
    {0x41, 0x5A, CaseRule::Offset, 32},        {0xC0, 0xD6, CaseRule::Offset, 32},  // ASCII, Latin-1
    {0xD8, 0xDE, CaseRule::Offset, 32},        {0x100, 0x12F, CaseRule::EvenUpper, 1},  // Latin Extended-A
    {0x132, 0x137, CaseRule::EvenUpper, 1},    {0x139, 0x148, CaseRule::OddUpper, 1},
    {0x14A, 0x177, CaseRule::EvenUpper, 1},    {0x178, 0x178, CaseRule::Offset, 0xFF - 0x178},  // Ÿ -> ÿ
    {0x179, 0x17E, CaseRule::OddUpper, 1},     {0x386, 0x386, CaseRule::Offset, 38},  // Greek
    {0x388, 0x38A, CaseRule::Offset, 37},      {0x38C, 0x38C, CaseRule::Offset, 64},
    {0x38E, 0x38F, CaseRule::Offset, 63},      {0x391, 0x3A1, CaseRule::Offset, 32},
    {0x3A3, 0x3AB, CaseRule::Offset, 32},      {0x400, 0x40F, CaseRule::Offset, 80},  // Cyrillic
    {0x410, 0x42F, CaseRule::Offset, 32},      {0x460, 0x481, CaseRule::EvenUpper, 1},
    {0x48A, 0x4BF, CaseRule::EvenUpper, 1},    {0x4C0, 0x4C0, CaseRule::Offset, 15},
    {0x4C1, 0x4CE, CaseRule::OddUpper, 1},     {0x4D0, 0x52F, CaseRule::EvenUpper, 1},
    {0x531, 0x556, CaseRule::Offset, 48},                                            // Armenian
    {0x1E00, 0x1E95, CaseRule::EvenUpper, 1},  {0x1E9E, 0x1E9E, CaseRule::Offset, 0xDF - 0x1E9E},  // ẞ -> ß
    {0x1EA0, 0x1EFF, CaseRule::EvenUpper, 1},  {0xFF21, 0xFF3A, CaseRule::Offset, 32},  // Vietnamese, fullwidth
};

uint32_t to_lower(uint32_t cp) {
  for (const CaseRange& r : kUpperCase) {
    if (cp < r.lo || cp > r.hi) continue;
    switch (r.rule) {
      case CaseRule::Offset: return static_cast<uint32_t>(static_cast<int64_t>(cp) + r.offset);
      case CaseRule::EvenUpper: return cp % 2 == 0 ? cp + 1 : cp;
      case CaseRule::OddUpper: return cp % 2 == 1 ? cp + 1 : cp;
    }
  }
  return cp;
}

// ------------------------------------------------------------------------ GPT-2's byte table

// GPT-2's bytes_to_unicode: the printable bytes stand for themselves and the other 68
// (controls, space, DEL, NBSP, soft hyphen) for U+0100 onwards, so that every byte is a visible
// character and a vocabulary can be written as text. `order` is the order of OpenAI's CLIP
// vocabulary: the printable bytes first.
struct ByteTable {
  std::array<std::string, 256> symbol;
  std::array<unsigned char, 256> order;
  std::array<int, 256 + 68> byte_of;  // code point -> byte, -1 when it stands for none
};

const ByteTable& byte_table() {
  static const ByteTable table = [] {
    ByteTable t;
    t.byte_of.fill(-1);
    auto printable = [](int b) { return (b >= 0x21 && b <= 0x7E) || (b >= 0xA1 && b <= 0xAC) || b >= 0xAE; };
    size_t k = 0;
    uint32_t next_extra = 256;
    for (int pass = 0; pass < 2; ++pass)
      for (int b = 0; b < 256; ++b) {
        if (printable(b) != (pass == 0)) continue;
        const uint32_t cp = pass == 0 ? static_cast<uint32_t>(b) : next_extra++;
        utf8::append(t.symbol[static_cast<size_t>(b)], cp);
        t.byte_of[cp] = b;
        t.order[k++] = static_cast<unsigned char>(b);
      }
    return t;
  }();
  return table;
}

// A vocabulary symbol back to bytes: characters that stand for bytes become those bytes;
// anything else (a hand-written vocabulary entry) is kept as its UTF-8.
void append_symbol_bytes(std::string_view symbol, std::string& out) {
  const ByteTable& t = byte_table();
  for (size_t i = 0; i < symbol.size();) {
    const Unit u = decode_at(symbol, i);
    if (u.cp < t.byte_of.size() && t.byte_of[u.cp] >= 0) out += static_cast<char>(t.byte_of[u.cp]);
    else out.append(symbol.substr(i, u.len));
    i += u.len;
  }
}

// -------------------------------------------------------------------------- text clean-up

// The Windows-1252 characters of bytes 0x80-0x9F, which html.unescape gives for &#128;-&#159;
// (0 where the byte has none: the code point stays as it is).
constexpr uint32_t kCp1252[32] = {0x20AC, 0, 0x201A, 0x0192, 0x201E, 0x2026, 0x2020, 0x2021,
                                  0x02C6, 0x2030, 0x0160, 0x2039, 0x0152, 0, 0x017D, 0,
                                  0, 0x2018, 0x2019, 0x201C, 0x201D, 0x2022, 0x2013, 0x2014,
                                  0x02DC, 0x2122, 0x0161, 0x203A, 0x0153, 0, 0x017E, 0x0178};

// What html.unescape makes of a numeric character reference.
std::string char_ref(uint32_t n) {
  std::string out;
  if (n == 0 || (n >= 0xD800 && n <= 0xDFFF) || n > 0x10FFFF) {
    utf8::append(out, 0xFFFD);
  } else if (n >= 0x80 && n <= 0x9F) {
    utf8::append(out, kCp1252[n - 0x80] ? kCp1252[n - 0x80] : n);
  } else if (!((n >= 0x01 && n <= 0x08) || n == 0x0B || (n >= 0x0E && n <= 0x1F) || n == 0x7F)) {
    utf8::append(out, n);  // the control characters above are dropped
  }
  return out;
}

struct Entity {
  const char* name;
  const char* text;
  bool legacy;  // also recognised without ';', even glued to what follows ("&ampx" is "&x")
};
constexpr Entity kEntities[] = {{"amp", "&", true},   {"lt", "<", true},          {"gt", ">", true},
                                {"quot", "\"", true}, {"nbsp", "\xC2\xA0", true}, {"apos", "'", false}};

// The length of the entity at s[i] == '&' (0 when there is none), its text in `text`.
size_t match_entity(std::string_view s, size_t i, std::string& text) {
  size_t j = i + 1;
  if (j < s.size() && s[j] == '#') {
    ++j;
    const bool hex = j < s.size() && (s[j] == 'x' || s[j] == 'X');
    if (hex) ++j;
    const size_t digits = j;
    uint32_t value = 0;
    for (; j < s.size(); ++j) {
      const char c = s[j];
      int d = -1;
      if (c >= '0' && c <= '9') d = c - '0';
      else if (hex && c >= 'a' && c <= 'f') d = c - 'a' + 10;
      else if (hex && c >= 'A' && c <= 'F') d = c - 'A' + 10;
      if (d < 0) break;
      value = std::min<uint32_t>(value * (hex ? 16 : 10) + static_cast<uint32_t>(d), 0x110000);
    }
    if (j == digits) return 0;
    if (j < s.size() && s[j] == ';') ++j;
    text = char_ref(value);
    return j - i;
  }
  size_t k = j;
  while (k < s.size() && std::isalnum(static_cast<unsigned char>(s[k]))) ++k;
  const std::string_view name = s.substr(j, k - j);
  if (k < s.size() && s[k] == ';')
    for (const Entity& e : kEntities)
      if (name == e.name) {
        text = e.text;
        return k + 1 - i;
      }
  for (const Entity& e : kEntities)
    if (e.legacy && name.starts_with(e.name)) {
      text = e.text;
      return 1 + std::strlen(e.name);
    }
  return 0;
}

// A little of ftfy.fix_text, which OpenAI runs first: curly quotes made straight (so that
// "don’t" splits as "don" "'t"), fullwidth ASCII made ASCII, Latin ligatures spelled out.
std::string ftfy_lite(std::string_view s) {
  return map_code_points(s, [](uint32_t cp, std::string& out) {
    if (cp == 0x02BC || (cp >= 0x2018 && cp <= 0x201B)) out += '\'';
    else if (cp >= 0x201C && cp <= 0x201F) out += '"';
    else if (cp >= 0xFF01 && cp <= 0xFF5E) out += static_cast<char>(cp - 0xFEE0);
    else if (cp == 0x3000) out += ' ';
    else if (cp == 0x132) out += "IJ";
    else if (cp == 0x133) out += "ij";
    else if (cp >= 0xFB00 && cp <= 0xFB06) {
      static constexpr const char* kLigatures[] = {"ff", "fi", "fl", "ffi", "ffl", "\xC5\xBFt", "st"};
      out += kLigatures[cp - 0xFB00];
    } else {
      utf8::append(out, cp);
    }
  });
}

// Each run of whitespace becomes `with`; `strip` drops it at both ends instead.
std::string collapse_whitespace(std::string_view s, std::string_view with, bool strip) {
  std::string out;
  bool pending = false;  // a run of whitespace not written yet
  for (const Unit& u : decode_units(s)) {
    if (classify(u.cp) == CharClass::Space) {
      pending = true;
      continue;
    }
    if (pending && !(strip && out.empty())) out += with;
    pending = false;
    out.append(s.substr(u.begin, u.len));
  }
  if (pending && !strip) out += with;
  return out;
}

std::string replace_all(std::string s, const std::string& from, const std::string& to) {
  for (size_t at = s.find(from); at != std::string::npos; at = s.find(from, at + to.size())) s.replace(at, from.size(), to);
  return s;
}

// ---------------------------------------------------------------------------- pre-tokenizers

// The length of the special token spelled at s[i], or 0 (CLIP's regex matches them first).
size_t special_at(std::string_view s, size_t i) {
  for (std::string_view t : {std::string_view(kStartOfText), std::string_view(kEndOfText)})
    if (s.substr(i, t.size()) == t) return t.size();
  return 0;
}

// The length of the contraction at s[i] ('s 't 're 've 'm 'll 'd), or 0. Case-sensitive, as
// HF's regexes are; OpenAI's is case-insensitive but runs on lower-cased text.
size_t contraction_at(std::string_view s, size_t i) {
  if (s[i] != '\'') return 0;
  for (std::string_view c : {"s", "t", "re", "ve", "m", "ll", "d"})
    if (s.substr(i + 1, c.size()) == c) return 1 + c.size();
  return 0;
}

std::string_view span(std::string_view s, const std::vector<Unit>& units, size_t first, size_t end) {
  return s.substr(units[first].begin, units[end - 1].begin + units[end - 1].len - units[first].begin);
}

// One past the run of units of class `c` that starts at `i`.
size_t run_end(const std::vector<Unit>& units, size_t i, CharClass c) {
  while (i < units.size() && classify(units[i].cp) == c) ++i;
  return i;
}

}  // namespace

// ------------------------------------------------------------------------------ bpe_text

namespace bpe_text {

const std::string& byte_symbol(unsigned char byte) { return byte_table().symbol[byte]; }

std::string lowercase(const std::string& text) {
  return map_code_points(text, [](uint32_t cp, std::string& out) {
    if (cp == 0x130) out += "i\xCC\x87";  // İ: "i" and a combining dot above, as Python does
    else utf8::append(out, to_lower(cp));
  });
}

std::string html_unescape(const std::string& text) {
  std::string out;
  out.reserve(text.size());
  for (size_t i = 0; i < text.size();) {
    std::string entity;
    const size_t n = text[i] == '&' ? match_entity(text, i, entity) : 0;
    if (n > 0) {
      out += entity;
      i += n;
    } else {
      out += text[i++];
    }
  }
  return out;
}

std::string clip_clean(const std::string& text) {
  // OpenAI: whitespace_clean(basic_clean(text)).lower(), basic_clean being ftfy.fix_text then
  // html.unescape twice. Unescaping first lets ftfy's quote fix reach "&#8217;", as ftfy's own
  // unescaping does.
  const std::string unescaped = html_unescape(html_unescape(text));
  return lowercase(collapse_whitespace(ftfy_lite(unescaped), " ", true));
}

// <\|startoftext\|>|<\|endoftext\|>|'s|'t|'re|'ve|'m|'ll|'d|[\p{L}]+|[\p{N}]|[^\s\p{L}\p{N}]+
// The alternatives are tried in that order at each position; whitespace matches none and is
// skipped. A number is one token per digit.
std::vector<std::string> clip_words(const std::string& text) {
  const std::vector<Unit> units = decode_units(text);
  std::vector<std::string> words;
  for (size_t i = 0; i < units.size();) {
    const CharClass c = classify(units[i].cp);
    if (c == CharClass::Space) {
      ++i;
      continue;
    }
    size_t end = i + 1;
    if (const size_t n = special_at(text, units[i].begin)) end = i + n;  // ASCII: one unit a byte
    else if (const size_t k = contraction_at(text, units[i].begin)) end = i + k;
    else if (c != CharClass::Number) end = run_end(units, i, c);
    words.emplace_back(span(text, units, i, end));
    i = end;
  }
  return words;
}

// 's|'t|'re|'ve|'m|'ll|'d| ?\p{L}+| ?\p{N}+| ?[^\s\p{L}\p{N}]+|\s+(?!\S)|\s+
// A single space joins the word after it; a longer run of whitespace leaves its last
// character to that word (\s+(?!\S) backtracks by one), and is taken whole at the end.
std::vector<std::string> gpt2_words(const std::string& text) {
  const std::vector<Unit> units = decode_units(text);
  std::vector<std::string> words;
  for (size_t i = 0; i < units.size();) {
    size_t end = 0;
    if (const size_t k = contraction_at(text, units[i].begin)) {
      end = i + k;
    } else {
      size_t j = i;
      if (units[i].cp == ' ' && i + 1 < units.size() && classify(units[i + 1].cp) != CharClass::Space) j = i + 1;
      const CharClass c = classify(units[j].cp);
      if (c != CharClass::Space) {
        end = run_end(units, j, c);
      } else {
        end = run_end(units, i, CharClass::Space);
        if (end < units.size() && end - i >= 2) --end;
      }
    }
    words.emplace_back(span(text, units, i, end));
    i = end;
  }
  return words;
}

}  // namespace bpe_text

// ------------------------------------------------------------------ PretrainedBpeTokenizer

namespace {

std::string read_tokenizer_file(const std::string& path) {
  std::error_code ec;
  if (std::filesystem::is_directory(path, ec)) fail(kOp, "'" + path + "' is a folder, not a tokenizer file");
  std::ifstream in(path, std::ios::binary);
  if (!in) fail(kOp, "cannot open '" + path + "' (" + std::strerror(errno) + ")");
  std::ostringstream content;
  content << in.rdbuf();
  if (in.bad()) fail(kOp, "cannot read '" + path + "' (" + std::strerror(errno) + ")");
  std::string text = content.str();
  if (text.empty()) fail(kOp, "'" + path + "' is empty");
  if (text.size() >= 2 && static_cast<unsigned char>(text[0]) == 0x1F && static_cast<unsigned char>(text[1]) == 0x8B)
    fail(kOp, "'" + path +
                  "' is gzip-compressed (OpenAI ships bpe_simple_vocab_16e6.txt.gz so); decompress it first "
                  "(gunzip -k) and give the .txt file");
  return text;
}

}  // namespace

const std::string& PretrainedBpeTokenizer::token_text(int64_t id) const {
  static const std::string none;
  if (id < 0 || id >= vocab_size()) return none;
  return tokens_[static_cast<size_t>(id)].text;
}

int64_t PretrainedBpeTokenizer::token_id(const std::string& text) const {
  auto it = ids_.find(text);
  return it == ids_.end() ? -1 : it->second;
}

void PretrainedBpeTokenizer::set_token(int64_t id, const std::string& text, const std::string& where) {
  if (id < 0 || id >= kMaxId) fail(kOp, fmt::format("{}: token id {} of '{}' is out of range", where, id, text));
  if (id >= vocab_size()) tokens_.resize(static_cast<size_t>(id) + 1);
  Token& t = tokens_[static_cast<size_t>(id)];
  if (t.known && t.text != text)
    fail(kOp, fmt::format("{}: id {} is given to both '{}' and '{}'", where, id, t.text, text));
  t.text = text;
  t.known = true;
  ids_[text] = id;  // a later duplicate wins, as in OpenAI's dict(zip(vocab, ...))
}

void PretrainedBpeTokenizer::add_merge(const std::string& a, const std::string& b, const std::string& where) {
  const int64_t ia = token_id(a), ib = token_id(b), ir = token_id(a + b);
  for (const auto& [part, id] : {std::pair{&a, ia}, std::pair{&b, ib}})
    if (id < 0) fail(kOp, fmt::format("{}: the merge '{} {}' uses '{}', which is not in the vocabulary", where, a, b, *part));
  if (ir < 0)
    fail(kOp, fmt::format("{}: the merge '{} {}' makes '{}', which is not in the vocabulary", where, a, b, a + b));
  merges_[pair_key(ia, ib)] = Merge{merge_lines_++, ir};  // a repeated pair takes its later rank
}

void PretrainedBpeTokenizer::apply_merges(std::vector<int64_t>& ids) const {
  while (ids.size() > 1) {
    const Merge* best = nullptr;
    uint64_t best_key = 0;
    for (size_t j = 0; j + 1 < ids.size(); ++j) {
      const uint64_t key = pair_key(ids[j], ids[j + 1]);
      auto it = merges_.find(key);
      if (it != merges_.end() && (!best || it->second.rank < best->rank)) {
        best = &it->second;
        best_key = key;
      }
    }
    if (!best) return;
    // Every occurrence of the pair at once, left to right, as OpenAI's bpe() does.
    size_t w = 0;
    for (size_t r = 0; r < ids.size();) {
      if (r + 1 < ids.size() && pair_key(ids[r], ids[r + 1]) == best_key) {
        ids[w++] = best->result;
        r += 2;
      } else {
        ids[w++] = ids[r++];
      }
    }
    ids.resize(w);
  }
}

void PretrainedBpeTokenizer::encode_word(std::string_view word, std::vector<int64_t>& out) const {
  if (word.empty()) return;
  if (auto it = word_specials_.find(std::string(word)); it != word_specials_.end()) {
    out.push_back(it->second);
    return;
  }
  const ByteTable& table = byte_table();
  if (ignore_merges_) {
    std::string whole;
    for (unsigned char b : word) whole += table.symbol[b];
    if (const int64_t id = token_id(whole); id >= 0) {
      out.push_back(id);
      return;
    }
  }
  std::vector<int64_t> ids;
  ids.reserve(word.size());
  for (size_t i = 0; i < word.size(); ++i) {
    std::string symbol = table.symbol[static_cast<unsigned char>(word[i])];
    if (i + 1 == word.size()) symbol += suffix_;
    int64_t id = token_id(symbol);
    if (id < 0) {
      if (unk_ < 0)
        fail(kOp, fmt::format("'{}' has no token '{}' and no unknown token (in the word '{}')", source_, symbol,
                              replace_invalid_utf8(word)));
      if (fuse_unk_ && !ids.empty() && ids.back() == unk_) continue;
      id = unk_;
    }
    ids.push_back(id);
  }
  apply_merges(ids);
  out.insert(out.end(), ids.begin(), ids.end());
}

std::string PretrainedBpeTokenizer::decode(const std::vector<int64_t>& ids) const {
  std::string bytes;
  for (size_t i = 0; i < ids.size(); ++i) {
    const int64_t id = ids[i];
    if (id < 0 || id >= vocab_size() || !tokens_[static_cast<size_t>(id)].known)
      fail(kOp, fmt::format("token id {} is not in the vocabulary of '{}' ({} ids)", id, source_, vocab_size()));
    const bool leading_start = i == 0 && id == start_;  // GPT-2 uses one token for both
    if (id == end_ && !leading_start) break;          // what follows is padding
    const Token& t = tokens_[static_cast<size_t>(id)];
    if (t.special || leading_start || id == start_) continue;
    if (t.raw) {
      bytes += t.text;
      continue;
    }
    std::string_view symbols = t.text;
    const bool ends_word = !suffix_.empty() && symbols.ends_with(suffix_);
    if (ends_word) symbols.remove_suffix(suffix_.size());
    append_symbol_bytes(symbols, bytes);
    if (ends_word) bytes += ' ';
  }
  std::string text = replace_invalid_utf8(bytes);
  if (!suffix_.empty()) {  // the words' spaces were made by decoding: strip them, as CLIP does
    const size_t first = text.find_first_not_of(" \t\n\v\f\r");
    if (first == std::string::npos) return "";
    text = text.substr(first, text.find_last_not_of(" \t\n\v\f\r") + 1 - first);
  }
  return text;
}

// ------------------------------------------------------------------------ ClipBpeTokenizer

namespace {

// The file's lines without their line ends ("\n" or "\r\n"); trailing blank lines dropped.
std::vector<std::string_view> split_lines(std::string_view text) {
  std::vector<std::string_view> lines;
  for (size_t start = 0; start <= text.size();) {
    size_t end = text.find('\n', start);
    if (end == std::string_view::npos) end = text.size();
    std::string_view line = text.substr(start, end - start);
    if (line.ends_with('\r')) line.remove_suffix(1);
    lines.push_back(line);
    start = end + 1;
  }
  while (lines.size() > 1 && lines.back().empty()) lines.pop_back();
  return lines;
}

std::vector<std::string> split_fields(std::string_view line) {
  std::vector<std::string> fields;
  size_t i = 0;
  while (true) {
    i = line.find_first_not_of(" \t", i);
    if (i == std::string_view::npos) return fields;
    const size_t end = std::min(line.find_first_of(" \t", i), line.size());
    fields.emplace_back(line.substr(i, end - i));
    i = end;
  }
}

}  // namespace

ClipBpeTokenizer ClipBpeTokenizer::load(const std::string& path) {
  const std::string text = read_tokenizer_file(path);
  const std::vector<std::string_view> lines = split_lines(text);
  auto where = [&](size_t line) { return fmt::format("'{}' line {}", path, line); };
  if (!lines[0].starts_with('#'))
    fail(kOp, where(1) + ": expected the '#version' line that starts CLIP's merges file, found '" +
                  excerpt(lines[0]) + "'");

  std::vector<std::pair<std::string, std::string>> merges;
  for (size_t n = 1; n < lines.size() && static_cast<int64_t>(merges.size()) < kMaxMerges; ++n) {
    std::vector<std::string> fields = split_fields(lines[n]);
    if (fields.size() != 2)
      fail(kOp, where(n + 1) + ": expected a merge, two symbols separated by a space, found '" + excerpt(lines[n]) + "'");
    merges.emplace_back(std::move(fields[0]), std::move(fields[1]));
  }

  ClipBpeTokenizer tok;
  tok.source_ = path;
  tok.suffix_ = "</w>";
  const ByteTable& table = byte_table();
  int64_t id = 0;
  for (unsigned char b : table.order) tok.set_token(id++, table.symbol[b], path);
  for (unsigned char b : table.order) tok.set_token(id++, table.symbol[b] + tok.suffix_, path);
  for (size_t m = 0; m < merges.size(); ++m) tok.set_token(id++, merges[m].first + merges[m].second, where(m + 2));
  tok.start_ = id;
  tok.end_ = id + 1;
  tok.pad_ = 0;  // OpenCLIP pads with zeros
  for (auto [special, sid] : {std::pair{kStartOfText, tok.start_}, std::pair{kEndOfText, tok.end_}}) {
    tok.set_token(sid, special, path);
    tok.tokens_[static_cast<size_t>(sid)].special = true;
    tok.word_specials_[special] = sid;
  }
  // Checked against the whole vocabulary: OpenAI's code only ever looks merges up by symbol.
  for (size_t m = 0; m < merges.size(); ++m) tok.add_merge(merges[m].first, merges[m].second, where(m + 2));
  return tok;
}

std::vector<int64_t> ClipBpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  for (const std::string& word : bpe_text::clip_words(bpe_text::clip_clean(text))) encode_word(word, ids);
  return ids;
}

// -------------------------------------------------------------------------- HfBpeTokenizer

namespace {

const json::Value* member(const json::Value& v, const char* key) {
  const json::Value* m = v.find(key);
  return m && m->kind() != json::Value::Kind::Null ? m : nullptr;
}

std::string type_of(const json::Value& v, const char* what) {
  const json::Value* t = member(v, "type");
  if (!t) fail("json", std::string(what) + " has no \"type\"");
  return t->as_string(what);
}

// A merge as "a b" or ["a", "b"].
std::pair<std::string, std::string> merge_parts(const json::Value& m, const std::string& where) {
  if (m.is_string()) {
    const std::string& s = m.as_string("a merge");
    const size_t space = s.find(' ');
    if (space != std::string::npos && space > 0 && space + 1 < s.size() && s.find(' ', space + 1) == std::string::npos)
      return {s.substr(0, space), s.substr(space + 1)};
  } else if (m.is_array()) {
    const std::vector<json::Value>& pair = m.as_array("a merge");
    if (pair.size() == 2 && pair[0].is_string() && pair[1].is_string())
      return {pair[0].as_string("a merge"), pair[1].as_string("a merge")};
  }
  fail(kOp, where + ": expected a merge written \"a b\" or [\"a\", \"b\"], found " +
                (m.is_string() ? json::quote(excerpt(m.as_string("a merge"))) : std::string("another kind of value")));
}

}  // namespace

void HfBpeTokenizer::read_normalizer(const json::Value& v) {
  const std::string type = type_of(v, "normalizer.type");
  if (type == "Sequence") {
    const json::Value* steps = member(v, "normalizers");
    if (!steps) fail(kOp, "'" + source_ + "': a Sequence normalizer without \"normalizers\"");
    for (const json::Value& step : steps->as_array("normalizer.normalizers")) read_normalizer(step);
  } else if (type == "NFC") {
    // Taken as done: most text is composed already (see clip_bpe.h).
  } else if (type == "Lowercase") {
    normalize_steps_.push_back({NormalizeStep::Kind::Lowercase, "", ""});
  } else if (type == "Replace") {
    const json::Value* pattern = member(v, "pattern");
    const json::Value* content = member(v, "content");
    if (!pattern || !content) fail(kOp, "'" + source_ + "': a Replace normalizer needs \"pattern\" and \"content\"");
    const std::string with = content->as_string("normalizer.content");
    if (const json::Value* s = member(*pattern, "String"); s && !s->as_string("pattern.String").empty()) {
      normalize_steps_.push_back({NormalizeStep::Kind::ReplaceString, s->as_string("pattern.String"), with});
    } else if (const json::Value* r = member(*pattern, "Regex"); r && r->as_string("pattern.Regex") == R"(\s+)") {
      normalize_steps_.push_back({NormalizeStep::Kind::CollapseWhitespace, "", with});
    } else {
      fail(kOp, "'" + source_ + "': the Replace normalizer's pattern is not supported (only a string, or the regex \\s+)");
    }
  } else {
    fail(kOp, "'" + source_ + "': the normalizer type '" + type +
                  "' is not supported (supported: Sequence, NFC, Lowercase, Replace)");
  }
}

void HfBpeTokenizer::read_pre_tokenizer(const json::Value& v) {
  std::vector<const json::Value*> steps = {&v};
  if (type_of(v, "pre_tokenizer.type") == "Sequence") {
    const json::Value* list = member(v, "pretokenizers");
    if (!list) fail(kOp, "'" + source_ + "': a Sequence pre_tokenizer without \"pretokenizers\"");
    steps.clear();
    for (const json::Value& s : list->as_array("pre_tokenizer.pretokenizers")) steps.push_back(&s);
  }
  const std::string supported = " (supported: ByteLevel, after a Split with CLIP's regex or alone)";
  bool byte_level = false;
  for (size_t i = 0; i < steps.size(); ++i) {
    const json::Value& s = *steps[i];
    const std::string type = type_of(s, "pre_tokenizer.type");
    if (byte_level) fail(kOp, "'" + source_ + "': the pre-tokenizer '" + type + "' after ByteLevel is not supported" + supported);
    if (type == "ByteLevel") {
      byte_level = true;
      // HF's defaults when the fields are absent: both true.
      const json::Value* prefix = member(s, "add_prefix_space");
      const json::Value* regex = member(s, "use_regex");
      add_prefix_space_ = prefix ? prefix->as_bool("ByteLevel.add_prefix_space") : true;
      byte_level_regex_ = regex ? regex->as_bool("ByteLevel.use_regex") : true;
    } else if (type == "Split") {
      const json::Value* pattern = member(s, "pattern");
      const json::Value* regex = pattern ? member(*pattern, "Regex") : nullptr;
      const json::Value* behavior = member(s, "behavior");
      const json::Value* invert = member(s, "invert");
      const bool clip = i == 0 && regex && regex->is_string() && regex->as_string("pattern.Regex") == kClipPattern &&
                        behavior && behavior->is_string() && behavior->as_string("behavior") == "Removed" &&
                        invert && invert->kind() == json::Value::Kind::Bool && invert->as_bool("invert");
      if (!clip)
        fail(kOp, "'" + source_ +
                      "': this Split pre-tokenizer is not supported: only CLIP's regex, with behavior Removed and "
                      "invert true, before ByteLevel");
      clip_split_ = true;
    } else {
      fail(kOp, "'" + source_ + "': the pre-tokenizer type '" + type + "' is not supported" + supported);
    }
  }
  if (!byte_level)
    fail(kOp, "'" + source_ + "': the pre-tokenizer has no ByteLevel step; only byte-level BPE is supported");
}

HfBpeTokenizer HfBpeTokenizer::load(const std::string& path) {
  const std::string text = read_tokenizer_file(path);
  HfBpeTokenizer tok;
  tok.source_ = path;
  const std::string file = "'" + path + "'";
  try {
    json::Value root;
    try {
      root = json::Value::parse(text);
    } catch (const Error& e) {
      fail(kOp, file + " is not valid JSON: " + e.detail());
    }
    const json::Value* model = member(root, "model");
    if (!root.is_object() || !model || !model->is_object())
      fail(kOp, file + " has no \"model\" object: is it a Hugging Face tokenizer.json?");
    const std::string type = member(*model, "type") ? type_of(*model, "model.type") : member(*model, "merges") ? "BPE" : "?";
    if (type != "BPE")
      fail(kOp, file + ": the model type '" + type + "' is not supported (only BPE, byte-level as GPT-2, RoBERTa and CLIP use)");

    // Model options: what changes tokenization must be understood, or refused.
    if (const json::Value* d = member(*model, "dropout"); d && d->as_number("model.dropout") != 0)
      fail(kOp, file + ": BPE dropout is not supported (it makes tokenization random)");
    if (const json::Value* p = member(*model, "continuing_subword_prefix");
        p && !p->as_string("model.continuing_subword_prefix").empty())
      fail(kOp, file + ": a continuing_subword_prefix ('" + p->as_string("") + "') is not supported");
    if (const json::Value* f = member(*model, "byte_fallback"); f && f->as_bool("model.byte_fallback"))
      fail(kOp, file + ": byte_fallback is not supported (a SentencePiece-style BPE, not a byte-level one)");
    if (const json::Value* s = member(*model, "end_of_word_suffix")) tok.suffix_ = s->as_string("model.end_of_word_suffix");
    if (const json::Value* f = member(*model, "fuse_unk")) tok.fuse_unk_ = f->as_bool("model.fuse_unk");
    if (const json::Value* m = member(*model, "ignore_merges")) tok.ignore_merges_ = m->as_bool("model.ignore_merges");

    const json::Value* vocab = member(*model, "vocab");
    const json::Value* merges = member(*model, "merges");
    if (!vocab || !vocab->is_object() || !merges || !merges->is_array())
      fail(kOp, file + ": the BPE model needs a \"vocab\" object and a \"merges\" array");
    for (const auto& [token, id] : vocab->as_object("model.vocab"))
      tok.set_token(id.as_int("a vocab id"), token, file + " vocab");
    if (tok.ids_.empty()) fail(kOp, file + ": the vocabulary is empty");

    // Added tokens: matched in the text as they are; those outside the model's vocabulary
    // are decoded as plain text.
    if (const json::Value* added = member(root, "added_tokens"))
      for (const json::Value& a : added->as_array("added_tokens")) {
        const json::Value* id_v = member(a, "id");
        const json::Value* content_v = member(a, "content");
        if (!id_v || !content_v) fail(kOp, file + ": an added token needs an \"id\" and a \"content\"");
        const int64_t id = id_v->as_int("added_tokens.id");
        const std::string& content = content_v->as_string("added_tokens.content");
        if (content.empty()) continue;
        const std::string where = file + " added token '" + content + "'";
        if (id < 0 || id >= kMaxId) fail(kOp, fmt::format("{}: id {} is out of range", where, id));
        if (id >= tok.vocab_size()) tok.tokens_.resize(static_cast<size_t>(id) + 1);
        PretrainedBpeTokenizer::Token& t = tok.tokens_[static_cast<size_t>(id)];
        if (t.known && t.text != content) fail(kOp, fmt::format("{}: id {} is also '{}'", where, id, t.text));
        if (!t.known) t = Token{content, true, false, true};
        if (const json::Value* sp = member(a, "special")) t.special = sp->as_bool("added_tokens.special");
        tok.added_.emplace_back(content, id);
        tok.word_specials_[content] = id;
      }
    std::stable_sort(tok.added_.begin(), tok.added_.end(),
                     [](const auto& x, const auto& y) { return x.first.size() > y.first.size(); });

    const std::vector<json::Value>& merge_list = merges->as_array("model.merges");
    for (size_t m = 0; m < merge_list.size(); ++m) {
      const std::string where = fmt::format("{} merges[{}]", file, m);
      auto [a, b] = merge_parts(merge_list[m], where);
      tok.add_merge(a, b, where);
    }

    if (const json::Value* n = member(root, "normalizer")) tok.read_normalizer(*n);
    const json::Value* pre = member(root, "pre_tokenizer");
    if (!pre) fail(kOp, file + " has no pre_tokenizer; only byte-level BPE (a ByteLevel pre-tokenizer) is supported");
    tok.read_pre_tokenizer(*pre);
    tok.choose_special_tokens(member(root, "post_processor"));
    if (const json::Value* u = member(*model, "unk_token")) tok.unk_ = tok.find_token(u->as_string("model.unk_token"));
  } catch (const Error& e) {
    if (e.op() != "json") throw;
    fail(kOp, file + ": " + e.detail());  // a field of the wrong kind: name the file
  }
  return tok;
}

int64_t HfBpeTokenizer::find_token(const std::string& text) const {
  if (const int64_t id = token_id(text); id >= 0) return id;
  for (const auto& [content, id] : added_)
    if (content == text) return id;
  return -1;
}

void HfBpeTokenizer::choose_special_tokens(const json::Value* post_processor) {
  const std::string file = "'" + source_ + "'";
  const int64_t sot = find_token(kStartOfText), eot = find_token(kEndOfText);
  int64_t cls = -1, sep = -1;
  if (post_processor) {
    const std::string type = type_of(*post_processor, "post_processor.type");
    if (type == "RobertaProcessing" || type == "BertProcessing") {
      // "cls": ["<s>", 0], "sep": ["</s>", 2]
      auto id_of = [&](const char* key) {
        const json::Value* pair = member(*post_processor, key);
        if (!pair || pair->as_array("post_processor token").size() != 2)
          fail(kOp, fmt::format("{}: the {} post_processor needs \"{}\": [token, id]", file, type, key));
        const int64_t id = pair->as_array("")[1].as_int("post_processor token id");
        if (id < 0 || id >= vocab_size() || !tokens_[static_cast<size_t>(id)].known)
          fail(kOp, fmt::format("{}: the post_processor's {} token id {} is not in the vocabulary", file, key, id));
        return id;
      };
      cls = id_of("cls");
      sep = id_of("sep");
    }
  }
  if (sot >= 0 && eot >= 0) {
    start_ = sot;
    end_ = eot;
  } else if (cls >= 0) {
    start_ = cls;
    end_ = sep;
  } else if (eot >= 0) {
    start_ = end_ = eot;
  } else {
    fail(kOp, file + ": no start and end tokens: neither <|startoftext|>/<|endoftext|>, nor a RobertaProcessing or "
                     "BertProcessing post_processor, nor <|endoftext|>");
  }
  tokens_[static_cast<size_t>(start_)].special = true;
  tokens_[static_cast<size_t>(end_)].special = true;
  const int64_t pad = find_token("<pad>");
  if (start_ == sot && end_ == eot && !tokens_.empty() && tokens_[0].known) pad_ = 0;  // CLIP: as OpenCLIP pads
  else pad_ = pad >= 0 ? pad : end_;
}

std::string HfBpeTokenizer::normalize(std::string text) const {
  for (const NormalizeStep& step : normalize_steps_) {
    switch (step.kind) {
      case NormalizeStep::Kind::Lowercase: text = bpe_text::lowercase(text); break;
      case NormalizeStep::Kind::ReplaceString: text = replace_all(std::move(text), step.pattern, step.content); break;
      case NormalizeStep::Kind::CollapseWhitespace: text = collapse_whitespace(text, step.content, false); break;
    }
  }
  return text;
}

std::vector<std::string> HfBpeTokenizer::pre_tokenize(const std::string& text) const {
  std::vector<std::string> words;
  if (clip_split_) words = bpe_text::clip_words(text);
  else if (!text.empty()) words = {text};
  if (add_prefix_space_)
    for (std::string& w : words)
      if (!w.starts_with(' ')) w.insert(0, 1, ' ');
  if (!byte_level_regex_) return words;
  std::vector<std::string> split;
  for (const std::string& w : words)
    for (std::string& piece : bpe_text::gpt2_words(w)) split.push_back(std::move(piece));
  return split;
}

std::vector<int64_t> HfBpeTokenizer::encode(const std::string& text) const {
  std::vector<int64_t> ids;
  auto encode_segment = [&](size_t begin, size_t end) {
    if (begin == end) return;
    for (const std::string& word : pre_tokenize(normalize(text.substr(begin, end - begin)))) encode_word(word, ids);
  };
  // Added tokens are cut out first (the longest at each position); the text between them is
  // normalized and pre-tokenized on its own.
  size_t segment = 0;
  for (size_t i = 0; i < text.size();) {
    const auto match = std::find_if(added_.begin(), added_.end(),
                                    [&](const auto& a) { return text.compare(i, a.first.size(), a.first) == 0; });
    if (match == added_.end()) {
      ++i;
      continue;
    }
    encode_segment(segment, i);
    ids.push_back(match->second);
    i += match->first.size();
    segment = i;
  }
  encode_segment(segment, text.size());
  return ids;
}

std::unique_ptr<Tokenizer> load_pretrained_tokenizer(const std::string& path) {
  if (std::filesystem::path(path).extension() == ".json") return std::make_unique<HfBpeTokenizer>(HfBpeTokenizer::load(path));
  return std::make_unique<ClipBpeTokenizer>(ClipBpeTokenizer::load(path));
}

}  // namespace mmgrad::data
