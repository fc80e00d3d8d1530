#include "models/module.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace mmgrad::nn {

template <typename F>
void Module::for_each_parameter(const std::string& prefix, F&& f) const {
  for (const auto& [name, slot] : params_) f(prefix + name, *slot);
  for (const auto& [name, child] : children_) child->for_each_parameter(prefix + name + ".", f);
}

std::vector<std::pair<std::string, Tensor>> Module::named_parameters() const {
  std::vector<std::pair<std::string, Tensor>> out;
  for_each_parameter("", [&](const std::string& n, Tensor& t) { out.emplace_back(n, t); });
  return out;
}

std::vector<Tensor> Module::parameters() const {
  std::vector<Tensor> out;
  for_each_parameter("", [&](const std::string&, Tensor& t) { out.push_back(t); });
  return out;
}

int64_t Module::num_parameters() const {
  int64_t n = 0;
  for_each_parameter("", [&](const std::string&, Tensor& t) { n += t.numel(); });
  return n;
}

Tensor Module::parameter(const std::string& name) const {
  Tensor found;
  std::vector<std::string> names;
  for_each_parameter("", [&](const std::string& n, Tensor& t) {
    if (n == name) found = t;
    names.push_back(n);
  });
  if (found.defined()) return found;
  // Suggest the names sharing the longest prefix with the one asked for.
  auto common = [&](const std::string& n) {
    size_t k = 0;
    while (k < n.size() && k < name.size() && n[k] == name[k]) ++k;
    return k;
  };
  std::stable_sort(names.begin(), names.end(),
                   [&](const std::string& a, const std::string& b) { return common(a) > common(b); });
  std::string hint;
  for (size_t i = 0; i < std::min<size_t>(3, names.size()); ++i) hint += (i ? ", " : "") + names[i];
  fail("parameter", "no parameter named '" + name + "' (closest: " + hint + ")");
}

void Module::zero_grad() {
  for_each_parameter("", [](const std::string&, Tensor& t) { t.set_grad(Tensor()); });
}

void Module::train(bool on) {
  training_ = on;
  for (auto& [name, child] : children_) child->train(on);
}

void Module::to(DType dtype) {
  NoGradGuard no_grad;
  for_each_parameter("", [&](const std::string&, Tensor& t) {
    t = ::mmgrad::to(t, dtype).detach();
    t.set_requires_grad(true);
  });
}

void Module::to(Device device) {
  NoGradGuard no_grad;
  for_each_parameter("", [&](const std::string&, Tensor& t) {
    t = ::mmgrad::to(t, device).detach();
    t.set_requires_grad(true);
  });
}

void Module::register_parameter(const std::string& name, Tensor& slot) {
  if (!slot.defined()) fail("register_parameter", "parameter '" + name + "' is an undefined tensor");
  for (const auto& [existing, unused] : params_)
    if (existing == name) fail("register_parameter", "parameter '" + name + "' is registered twice");
  slot.set_requires_grad(true);
  params_.emplace_back(name, &slot);
}

void Module::register_module(const std::string& name, Module& child) {
  for (const auto& [existing, unused] : children_)
    if (existing == name) fail("register_module", "submodule '" + name + "' is registered twice");
  children_.emplace_back(name, &child);
}

}  // namespace mmgrad::nn
