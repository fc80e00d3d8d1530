// Run configuration: a --config file (a JSON object applied over a preset) and --set
// assignments (key=value, one per line here), then the consistency checks.
#include "fuzz/fuzz_input.h"
#include "train/run_config.h"

using namespace mmgrad;

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  std::string text(reinterpret_cast<const char*>(data), size);
  train::RunConfig config = train::run_preset("shapes-small");
  if (!text.empty() && text[0] == '{') {
    fuzz::parses_or_refuses_clearly([&] { train::apply_json(config, text); }, "");
  } else {
    size_t start = 0;
    while (start < text.size()) {
      size_t end = text.find('\n', start);
      if (end == std::string::npos) end = text.size();
      std::string assignment = text.substr(start, end - start);
      if (!fuzz::parses_or_refuses_clearly([&] { train::set_assignment(config, assignment); }, "")) break;
      start = end + 1;
    }
  }
  if (fuzz::parses_or_refuses_clearly([&] { train::validate(config); }, "")) {
    // A valid configuration survives the round trip through config.json unchanged.
    train::RunConfig again = train::run_preset("shapes-small");
    train::apply_json(again, train::to_json(config));
    fuzz::require(train::to_json(again) == train::to_json(config), "config.json round-trips");
  }
  return 0;
}
