// Writing a file so that readers see either the old content or the complete new one: write
// a temporary file next to it, then rename it over the target. An interrupted or failed
// write never leaves a half-written file under the real name, nor a stray temporary.
#pragma once
#include <functional>
#include <ostream>
#include <string>

namespace mmgrad {

// Calls write(stream) on a temporary file, then renames it to `path`. Errors are
// mmgrad::Error named `op`, with the file and the system's reason.
void write_file_atomically(const std::string& path, const char* op,
                           const std::function<void(std::ostream&)>& write);

}  // namespace mmgrad
