// Template part of fuzz_input.h.
#pragma once
#include <cstdio>
#include <cstdlib>

#include "core/error.h"

namespace mmgrad::fuzz {

template <typename Parse>
bool parses_or_refuses_clearly(Parse&& parse, const std::string& must_name) {
  try {
    parse();
    return true;
  } catch (const mmgrad::Error& e) {
    std::string message = e.what();
    if (message.empty() || (!must_name.empty() && message.find(must_name) == std::string::npos)) {
      std::fprintf(stderr, "fuzz: an error that does not name '%s':\n%s\n", must_name.c_str(), message.c_str());
      std::abort();
    }
    if (std::getenv("MMGRAD_FUZZ_SHOW_ERRORS")) std::fprintf(stderr, "refused: %s\n", message.c_str());
    return false;
  }
}

}  // namespace mmgrad::fuzz
