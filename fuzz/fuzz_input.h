// What every fuzz target shares: the input as a file (most parsers read paths, as users
// give them), and the rule a target enforces. A parser may refuse any input, but only with
// mmgrad::Error whose message names the file; any other exception (std::out_of_range,
// std::bad_alloc, ...) escapes the target, and libFuzzer reports it as a finding, as it
// does crashes, leaks, sanitizer reports and hangs.
#pragma once
#include <cstddef>
#include <cstdint>
#include <string>

namespace mmgrad::fuzz {

// Writes the input to a file named `file_name` in a folder private to this process (on
// /dev/shm when there is one: a fuzzer writes it a million times) and returns its path.
std::string input_as_file(const uint8_t* data, size_t size, const std::string& file_name);

// Runs `parse`; an mmgrad::Error is an accepted outcome when its message contains
// `must_name` (the file, so a user knows which one is bad). Returns whether parsing succeeded.
// MMGRAD_FUZZ_SHOW_ERRORS=1 prints each refusal (to see what a corpus file exercises).
template <typename Parse>
bool parses_or_refuses_clearly(Parse&& parse, const std::string& must_name);

// Aborts (a finding) with `what` when `condition` is false: invariants on accepted inputs.
void require(bool condition, const char* what);

}  // namespace mmgrad::fuzz

#include "fuzz/fuzz_input_impl.h"
