// The JSON reader under every header, tokenizer and config file: nesting limits, escapes,
// numbers, duplicate keys. What it accepts, quote() and parse() agree on.
#include "core/json.h"
#include "fuzz/fuzz_input.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string_view text(reinterpret_cast<const char*>(data), size);
  json::Value value;
  if (fuzz::parses_or_refuses_clearly([&] { value = json::Value::parse(text); }, "")) {
    if (value.is_string()) {
      json::Value again = json::Value::parse(json::quote(value.as_string("string")));
      fuzz::require(again.as_string("string") == value.as_string("string"), "quote() round-trips a parsed string");
    }
  }
  return 0;
}
