// Readable printing: fmt::format("{}", t) and std::ostream << t give
//   tensor([[0.1000, 0.2000],
//           [0.3000, 0.4000]], f32, cpu, requires_grad)
// Large tensors are summarised with "..." (first and last 3 entries per dim).
#pragma once
#include <ostream>

#include <fmt/format.h>

#include "core/tensor.h"

namespace mmgrad {
std::ostream& operator<<(std::ostream& os, const Tensor& t);
}

template <>
struct fmt::formatter<mmgrad::Tensor> : fmt::formatter<std::string_view> {
  template <typename Ctx>
  auto format(const mmgrad::Tensor& t, Ctx& ctx) const {
    return fmt::formatter<std::string_view>::format(t.str(), ctx);
  }
};
