#include "autograd/print.h"

#include <algorithm>
#include <cmath>

#include "autograd/ops.h"

namespace mmgrad {
namespace {

constexpr int64_t kSummariseAbove = 1000;
constexpr int64_t kEdgeItems = 3;

std::string format_float(double v) {
  if (std::isnan(v)) return "nan";
  if (std::isinf(v)) return v > 0 ? "inf" : "-inf";
  double a = std::abs(v);
  if (a != 0 && (a >= 1e6 || a < 1e-4)) return fmt::format("{:.4e}", v);
  return fmt::format("{:.4f}", v);
}

// Every element as text, row-major. Integers are read as i64 (exact beyond 2^53).
std::vector<std::string> cells_of(const Tensor& t) {
  std::vector<std::string> cells;
  if (is_floating(t.dtype())) {
    for (double v : to_vector<double>(t)) cells.push_back(format_float(v));
  } else if (t.dtype() == DType::Bool) {
    for (int64_t v : to_vector<int64_t>(t)) cells.push_back(v ? "true" : "false");
  } else {
    for (int64_t v : to_vector<int64_t>(t)) cells.push_back(fmt::format("{}", v));
  }
  return cells;
}

void print_dim(std::string& out, const std::vector<std::string>& cells, const Shape& shape,
               const Shape& strides, int d, int64_t offset, bool summarise, int indent,
               size_t width) {
  if (d == static_cast<int>(shape.size())) {
    const std::string& v = cells[offset];
    out += std::string(width > v.size() ? width - v.size() : 0, ' ') + v;  // right-aligned columns
    return;
  }
  const bool last_dim = d + 1 == static_cast<int>(shape.size());
  const std::string separator = last_dim ? ", " : ",\n" + std::string(indent + 1, ' ');
  out += "[";
  int64_t n = shape[d];
  bool cut = summarise && n > 2 * kEdgeItems;
  for (int64_t i = 0; i < n; ++i) {
    if (cut && i == kEdgeItems) {
      out += "..." + separator;
      i = n - kEdgeItems;
    }
    print_dim(out, cells, shape, strides, d + 1, offset + i * strides[d], summarise, indent + 1, width);
    if (i + 1 < n) out += separator;
  }
  out += "]";
}

}  // namespace

std::string Tensor::str() const {
  if (!defined()) return "tensor(undefined)";
  std::vector<std::string> cells = cells_of(*this);
  size_t width = 0;
  for (const std::string& c : cells) width = std::max(width, c.size());
  std::string out = "tensor(";
  print_dim(out, cells, shape(), contiguous_strides(shape()), 0, 0, numel() > kSummariseAbove, 7, width);
  out += fmt::format(", {}, {}", dtype_name(dtype()), device().str());
  if (requires_grad()) out += ", requires_grad";
  out += ")";
  return out;
}

std::ostream& operator<<(std::ostream& os, const Tensor& t) { return os << t.str(); }

}  // namespace mmgrad
