#include "autograd/print.h"

#include <cmath>

#include "autograd/ops.h"

namespace mmgrad {
namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

std::string format_value(double v, bool floating) {
  if (!floating) return fmt::format("{}", static_cast<int64_t>(v));
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-4)) return fmt::format("{:.4e}", v);
  return fmt::format("{:.4f}", v);
}

void print_dim(std::string& out, const std::vector<double>& vals, const Shape& shape, const Shape& strides,
               int d, int64_t offset, bool floating, bool summarise, int indent) {
  if (d == static_cast<int>(shape.size())) {
    out += format_value(vals[offset], floating);
    return;
  }
  out += "[";
  int64_t n = shape[d];
  bool cut = summarise && n > 2 * kEdgeItems;
  for (int64_t i = 0; i < n; ++i) {
    if (cut && i == kEdgeItems) {
      out += d + 1 == static_cast<int>(shape.size()) ? "..., " : "...,\n" + std::string(indent + 1, ' ');
      i = n - kEdgeItems;
    }
    print_dim(out, vals, shape, strides, d + 1, offset + i * strides[d], floating, summarise, indent + 1);
    if (i + 1 < n) out += d + 1 == static_cast<int>(shape.size()) ? ", " : ",\n" + std::string(indent + 1, ' ');
  }
  out += "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<double> vals = to_vector<double>(*this);
  std::string out = "tensor(";
  print_dim(out, vals, shape(), contiguous_strides(shape()), 0, 0, is_floating(dtype()),
            numel() > kSummariseAbove, 7);
  out += fmt::format(", {}, {}", dtype_name(dtype()), device().str());
  if (requires_grad()) out += ", requires_grad";
  out += ")";
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace mmgrad
