#include "core/json.h"

#include <cmath>
#include <cstdlib>
#include <set>

#include <fmt/format.h>

#include "core/error.h"
#include "core/utf8.h"

namespace mmgrad::json {

class Parser {
 public:
  explicit Parser(std::string_view s) : s_(s) {}

  Value parse_document() {
    Value v = parse_value(0);
    skip_space();
    if (pos_ != s_.size()) error("unexpected text after the JSON value");
    return v;
  }

 private:
  static constexpr int kMaxDepth = 64;

  [[noreturn]] void error(const std::string& what) const {
    fail("json", fmt::format("{} at byte {}", what, pos_));
  }
  void skip_space() {
    while (pos_ < s_.size() && (s_[pos_] == ' ' || s_[pos_] == '\n' || s_[pos_] == '\r' || s_[pos_] == '\t')) ++pos_;
  }
  bool consume(char c) {
    skip_space();
    if (pos_ < s_.size() && s_[pos_] == c) {
      ++pos_;
      return true;
    }
    return false;
  }
  void expect(char c) {
    if (!consume(c)) error(fmt::format("expected '{}'", c));
  }
  void expect_word(std::string_view w) {
    if (s_.substr(pos_, w.size()) != w) error("invalid literal");
    pos_ += w.size();
  }

  Value parse_value(int depth) {
    if (depth > kMaxDepth) error("nesting deeper than 64 levels");
    skip_space();
    if (pos_ >= s_.size()) error("unexpected end of input");
    Value v;
    char c = s_[pos_];
    if (c == '{') {
      ++pos_;
      v.kind_ = Value::Kind::Object;
      std::set<std::string> keys;
      if (consume('}')) return v;
      do {
        skip_space();
        if (pos_ >= s_.size() || s_[pos_] != '"') error("expected a string key");
        std::string key = parse_string();
        if (!keys.insert(key).second) error("duplicate key \"" + key + "\"");
        expect(':');
        v.object_.emplace_back(std::move(key), parse_value(depth + 1));
      } while (consume(','));
      expect('}');
    } else if (c == '[') {
      ++pos_;
      v.kind_ = Value::Kind::Array;
      if (consume(']')) return v;
      do {
        v.array_.push_back(parse_value(depth + 1));
      } while (consume(','));
      expect(']');
    } else if (c == '"') {
      v.kind_ = Value::Kind::String;
      v.string_ = parse_string();
    } else if (c == 't') {
      expect_word("true");
      v.kind_ = Value::Kind::Bool;
      v.bool_ = true;
    } else if (c == 'f') {
      expect_word("false");
      v.kind_ = Value::Kind::Bool;
    } else if (c == 'n') {
      expect_word("null");
    } else {
      v.kind_ = Value::Kind::Number;
      v.number_ = parse_number();
    }
    return v;
  }

  double parse_number() {
    size_t start = pos_;
    if (pos_ < s_.size() && s_[pos_] == '-') ++pos_;
    auto digits = [&] {
      size_t d = pos_;
      while (pos_ < s_.size() && s_[pos_] >= '0' && s_[pos_] <= '9') ++pos_;
      return pos_ - d;
    };
    if (digits() == 0) error("invalid number");
    if (pos_ < s_.size() && s_[pos_] == '.') {
      ++pos_;
      if (digits() == 0) error("invalid number");
    }
    if (pos_ < s_.size() && (s_[pos_] == 'e' || s_[pos_] == 'E')) {
      ++pos_;
      if (pos_ < s_.size() && (s_[pos_] == '+' || s_[pos_] == '-')) ++pos_;
      if (digits() == 0) error("invalid number");
    }
    std::string text(s_.substr(start, pos_ - start));
    double x = std::strtod(text.c_str(), nullptr);
    if (!std::isfinite(x)) error("number out of range");
    return x;
  }

  uint32_t parse_hex4() {
    if (pos_ + 4 > s_.size()) error("truncated \\u escape");
    uint32_t v = 0;
    for (int i = 0; i < 4; ++i) {
      char h = s_[pos_++];
      v <<= 4;
      if (h >= '0' && h <= '9') v |= h - '0';
      else if (h >= 'a' && h <= 'f') v |= h - 'a' + 10;
      else if (h >= 'A' && h <= 'F') v |= h - 'A' + 10;
      else error("invalid \\u escape");
    }
    return v;
  }

  std::string parse_string() {
    ++pos_;  // opening quote
    std::string out;
    for (;;) {
      if (pos_ >= s_.size()) error("unterminated string");
      char c = s_[pos_++];
      if (c == '"') return out;
      if (static_cast<unsigned char>(c) < 0x20) error("control character in a string");
      if (c != '\\') {
        out += c;
        continue;
      }
      if (pos_ >= s_.size()) error("unterminated escape");
      char e = s_[pos_++];
      switch (e) {
        case '"': out += '"'; break;
        case '\\': out += '\\'; break;
        case '/': out += '/'; break;
        case 'b': out += '\b'; break;
        case 'f': out += '\f'; break;
        case 'n': out += '\n'; break;
        case 'r': out += '\r'; break;
        case 't': out += '\t'; break;
        case 'u': {
          uint32_t cp = parse_hex4();
          if (cp >= 0xD800 && cp < 0xDC00) {  // a surrogate pair
            if (s_.substr(pos_, 2) != "\\u") error("unpaired surrogate");
            pos_ += 2;
            uint32_t lo = parse_hex4();
            if (lo < 0xDC00 || lo >= 0xE000) error("unpaired surrogate");
            cp = 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
          } else if (cp >= 0xDC00 && cp < 0xE000) {
            error("unpaired surrogate");
          }
          utf8::append(out, cp);
          break;
        }
        default: error("invalid escape");
      }
    }
  }

  std::string_view s_;
  size_t pos_ = 0;
};

Value Value::parse(std::string_view text) { return Parser(text).parse_document(); }

static const char* kind_name(Value::Kind k) {
  switch (k) {
    case Value::Kind::Null: return "null";
    case Value::Kind::Bool: return "a boolean";
    case Value::Kind::Number: return "a number";
    case Value::Kind::String: return "a string";
    case Value::Kind::Array: return "an array";
    case Value::Kind::Object: return "an object";
  }
  return "?";
}

static void expect_kind(const Value& v, Value::Kind k, const char* what) {
  if (v.kind() != k) fail("json", fmt::format("{} must be {}, not {}", what, kind_name(k), kind_name(v.kind())));
}

const std::string& Value::as_string(const char* what) const {
  expect_kind(*this, Kind::String, what);
  return string_;
}
bool Value::as_bool(const char* what) const {
  expect_kind(*this, Kind::Bool, what);
  return bool_;
}
double Value::as_number(const char* what) const {
  expect_kind(*this, Kind::Number, what);
  return number_;
}
int64_t Value::as_int(const char* what) const {
  double x = as_number(what);
  if (x != std::floor(x) || std::abs(x) > 9007199254740992.0)
    fail("json", fmt::format("{} must be an integer (up to 2^53), not {}", what, x));
  return static_cast<int64_t>(x);
}
const std::vector<Value>& Value::as_array(const char* what) const {
  expect_kind(*this, Kind::Array, what);
  return array_;
}
const std::vector<std::pair<std::string, Value>>& Value::as_object(const char* what) const {
  expect_kind(*this, Kind::Object, what);
  return object_;
}
const Value* Value::find(const std::string& key) const {
  if (kind_ != Kind::Object) return nullptr;
  for (const auto& [k, v] : object_)
    if (k == key) return &v;
  return nullptr;
}

std::string quote(std::string_view s) {
  std::string out = "\"";
  for (char c : s) {
    switch (c) {
      case '"': out += "\\\""; break;
      case '\\': out += "\\\\"; break;
      case '\n': out += "\\n"; break;
      case '\r': out += "\\r"; break;
      case '\t': out += "\\t"; break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) out += fmt::format("\\u{:04x}", static_cast<int>(c));
        else out += c;
    }
  }
  return out + "\"";
}

}  // namespace mmgrad::json
