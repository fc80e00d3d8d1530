// A small, strict JSON reader and writer for the formats mmgrad reads (safetensors headers,
// later tokenizer and config files). Parse errors name the byte offset; nesting is limited so
// hostile input cannot exhaust the stack.
#pragma once
#include <cstdint>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace mmgrad::json {

class Value {
 public:
  enum class Kind { Null, Bool, Number, String, Array, Object };
  Value() = default;
  Kind kind() const { return kind_; }
  bool is_object() const { return kind_ == Kind::Object; }
  bool is_array() const { return kind_ == Kind::Array; }
  bool is_string() const { return kind_ == Kind::String; }
  bool is_number() const { return kind_ == Kind::Number; }

  // Typed access; each throws mmgrad::Error naming `what` when the kind differs.
  const std::string& as_string(const char* what) const;
  bool as_bool(const char* what) const;
  double as_number(const char* what) const;
  int64_t as_int(const char* what) const;  // a number that is an exact integer
  const std::vector<Value>& as_array(const char* what) const;
  // Object members in file order (duplicate keys are a parse error).
  const std::vector<std::pair<std::string, Value>>& as_object(const char* what) const;
  const Value* find(const std::string& key) const;  // null when absent or not an object

  static Value parse(std::string_view text);  // throws mmgrad::Error("json", ...)

 private:
  friend class Parser;
  Kind kind_ = Kind::Null;
  bool bool_ = false;
  double number_ = 0;
  std::string string_;
  std::vector<Value> array_;
  std::vector<std::pair<std::string, Value>> object_;
};

// A JSON string literal with the necessary escapes, quotes included.
std::string quote(std::string_view s);

}  // namespace mmgrad::json
