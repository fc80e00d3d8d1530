// nn::Module: a tree of named parameters, as in PyTorch.
//
// A module registers its parameter members and child modules by name; named_parameters()
// walks the tree and joins names with dots ("encoder.layers.0.self_attn.q_proj.weight"), the
// names that checkpoints and the PyTorch parity tests use (../shared/spec/MODELS.md).
// Registration stores pointers to the members, so modules are neither copied nor moved:
// hold them by value inside their parent, or by unique_ptr in a container.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::nn {

class Module {
 public:
  Module() = default;
  virtual ~Module() = default;
  Module(const Module&) = delete;
  Module& operator=(const Module&) = delete;

  // Every parameter of this module and its descendants, in registration order.
  std::vector<std::pair<std::string, Tensor>> named_parameters() const;
  std::vector<Tensor> parameters() const;
  int64_t num_parameters() const;
  // The parameter with this dotted name; throws naming it (and the closest names) if absent.
  Tensor parameter(const std::string& name) const;

  // Drops every parameter's gradient.
  void zero_grad();
  // Training mode (dropout active) for this module and its descendants.
  void train(bool on = true);
  void eval() { train(false); }
  bool is_training() const { return training_; }

  // Converts every parameter (a new leaf that requires grad, in the same slot).
  void to(DType dtype);
  void to(Device device);

 protected:
  // Makes `slot` (a member of the subclass) the parameter `name`; sets requires_grad.
  void register_parameter(const std::string& name, Tensor& slot);
  // Makes `child` (a member of the subclass, or owned by it) the submodule `name`.
  void register_module(const std::string& name, Module& child);

 private:
  template <typename F>
  void for_each_parameter(const std::string& prefix, F&& f) const;

  std::vector<std::pair<std::string, Tensor*>> params_;
  std::vector<std::pair<std::string, Module*>> children_;
  bool training_ = true;
};

}  // namespace mmgrad::nn
