#include "core/error.h"

namespace mmgrad {

static std::string compose(const std::string& op, const std::string& message,
                           const std::vector<std::string>& operands) {
  std::string s = "mmgrad: " + op + ": " + message;
  if (!operands.empty()) {
    s += " (";
    for (size_t i = 0; i < operands.size(); ++i) {
      if (i) s += "; ";
      s += operands[i];
    }
    s += ")";
  }
  return s;
}

Error::Error(std::string op, std::string message, std::vector<std::string> operands)
    : std::runtime_error(compose(op, message, operands)), op_(std::move(op)),
      detail_(std::move(message)) {}

void fail(std::string_view op, std::string message, std::vector<std::string> operands) {
  throw Error(std::string(op), std::move(message), std::move(operands));
}

}  // namespace mmgrad
