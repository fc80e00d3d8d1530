// The one exception type of mmgrad. Its message names the op and the operands involved
// (shapes, dtypes, devices), so a user can see what went wrong without a debugger.
#pragma once
#include <stdexcept>
#include <string>
#include <string_view>
#include <vector>

namespace mmgrad {

class Error : public std::runtime_error {
 public:
  Error(std::string op, std::string message, std::vector<std::string> operands = {});
  const std::string& op() const { return op_; }
  const std::string& detail() const { return detail_; }

 private:
  std::string op_;
  std::string detail_;
};

// Throws Error. `operands` are already-formatted descriptions such as "a: f32[2, 3] cpu".
[[noreturn]] void fail(std::string_view op, std::string message,
                       std::vector<std::string> operands = {});

}  // namespace mmgrad
