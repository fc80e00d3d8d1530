#include "autograd/print.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"

namespace mmgrad {
namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

std::string format_value(double v, DType dtype) {
  bool floating = is_floating(dtype);
  if (dtype == DType::Bool) return v != 0 ? "true" : "false";
  if (!floating) return fmt::format("{}", static_cast<int64_t>(v));
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-4)) return fmt::format("{:.4e}", v);
  return fmt::format("{:.4f}", v);
}

void print_dim(std::string& out, const std::vector<double>& vals, const Shape& shape, const Shape& strides,
               int d, int64_t offset, DType dtype, bool summarise, int indent, size_t width) {
  if (d == static_cast<int>(shape.size())) {
    std::string v = format_value(vals[offset], dtype);
    out += std::string(width > v.size() ? width - v.size() : 0, ' ') + v;  // right-aligned columns
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
    print_dim(out, vals, shape, strides, d + 1, offset + i * strides[d], dtype, summarise, indent + 1, width);
    if (i + 1 < n) out += d + 1 == static_cast<int>(shape.size()) ? ", " : ",\n" + std::string(indent + 1, ' ');
  }
  out += "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<double> vals = to_vector<double>(*this);
  std::string out = "tensor(";
  size_t width = 0;
  for (double v : vals) width = std::max(width, format_value(v, dtype()).size());
  print_dim(out, vals, shape(), contiguous_strides(shape()), 0, 0, dtype(),
            numel() > kSummariseAbove, 7, width);
  out += fmt::format(", {}, {}", dtype_name(dtype()), device().str());
  if (requires_grad()) out += ", requires_grad";
  out += ")";
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace mmgrad
