#include "autograd/anomaly.h"

#include <cmath>
#include <cstdlib>
#include <unordered_map>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"

namespace mmgrad::autograd {
namespace {

thread_local bool t_on = false;
// Parameter -> the module that owns it (its name without the last component).
thread_local std::unordered_map<const TensorImpl*, std::string>* t_modules = nullptr;

// The module owning a parameter ("" for anything else).
std::string parameter_module(const Tensor& t) {
  if (!t.defined() || !t_modules) return "";
  auto it = t_modules->find(&t.impl());
  return it == t_modules->end() ? "" : it->second;
}

// "a.b.c" and "a.b.d" -> "a.b".
std::string common_prefix(const std::string& a, const std::string& b) {
  size_t end = 0;
  for (size_t i = 0; i <= a.size() && i <= b.size(); ++i) {
    const bool a_end = i == a.size() || a[i] == '.', b_end = i == b.size() || b[i] == '.';
    if (a_end && b_end) end = i;
    if (i == a.size() || i == b.size() || a[i] != b[i]) break;
  }
  return a.substr(0, end);
}

std::string operands(const std::vector<Tensor>& ts) {
  std::string s;
  for (size_t i = 0; i < ts.size(); ++i)
    s += (i ? ", " : "") + (ts[i].defined() ? describe(fmt::format("input {}", i).c_str(), ts[i]) : "input " + std::to_string(i) + ": none");
  return s;
}

std::string where(const std::string& module) {
  return module.empty() ? "outside any module's parameters" : "in module '" + module + "'";
}

}  // namespace

// x * 0 sums to NaN exactly when some element is NaN or infinite: one reduction, any device.
bool all_finite(const Tensor& t) {
  if (!t.defined() || !is_floating(t.dtype()) || t.numel() == 0) return true;
  NoGradGuard no_grad;
  return std::isfinite(item(sum(mul(t.to(DType::F64), 0.0))));
}

DetectAnomaly::DetectAnomaly(const std::vector<std::pair<std::string, Tensor>>& parameters) : previous_(t_on) {
  t_on = true;
  delete t_modules;
  t_modules = new std::unordered_map<const TensorImpl*, std::string>();
  for (const auto& [name, p] : parameters) {
    const size_t dot = name.rfind('.');
    (*t_modules)[&p.impl()] = dot == std::string::npos ? name : name.substr(0, dot);
  }
}

DetectAnomaly::~DetectAnomaly() {
  t_on = previous_;
  if (!t_on) {
    delete t_modules;
    t_modules = nullptr;
  }
}

bool anomaly_mode() { return t_on; }

bool anomaly_mode_from_environment() {
  const char* v = std::getenv("MMGRAD_DETECT_ANOMALY");
  return v && std::string(v) == "1";
}

namespace detail {

void check_forward(const char* op, const Tensor& output, const std::vector<Tensor>& inputs, Node& node) {
  // The node belongs to the module of its parameters (the innermost module that holds them
  // all: a fused op over a LayerNorm and an MLP belongs to their layer), else to the latest
  // module among its inputs' nodes.
  bool any_parameter = false;
  for (const Tensor& t : inputs) {
    const std::string m = parameter_module(t);
    if (m.empty()) continue;
    node.module = any_parameter ? common_prefix(node.module, m) : m;
    any_parameter = true;
  }
  if (!any_parameter)
    for (const Tensor& t : inputs)
      if (t.defined() && t.grad_fn() && !t.grad_fn()->module.empty()) node.module = t.grad_fn()->module;
  if (all_finite(output)) return;
  bool inputs_finite = true;
  for (const Tensor& t : inputs) inputs_finite = inputs_finite && all_finite(t);
  fail("anomaly", fmt::format("forward of '{}' {} produced a non-finite value{} ({})", op, where(node.module),
                              inputs_finite ? " from finite inputs" : " (some inputs were already non-finite)",
                              operands(inputs)));
}

void check_backward(const Node& node, const std::vector<Tensor>& input_grads) {
  for (size_t i = 0; i < input_grads.size(); ++i)
    if (!all_finite(input_grads[i]))
      fail("anomaly", fmt::format("backward of '{}' {} produced a non-finite gradient for its input {} ({})",
                                  node.name(), where(node.module), i, describe("gradient", input_grads[i])));
}

}  // namespace detail
}  // namespace mmgrad::autograd
