#include "autograd/node.h"

#include <atomic>

#include <fmt/format.h>

#include "autograd/anomaly.h"
#include "autograd/autocast.h"

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace mmgrad::autograd {
namespace {
std::atomic<uint64_t> g_next_sequence{0};
}

SavedTensor::SavedTensor(const Tensor& t) {
  if (!t.defined()) return;
  data_ = Tensor::alias(t, t.shape(), t.strides(), t.offset());
  version_ = t.version();
}

const Tensor& SavedTensor::get() const {
  if (data_.defined() && data_.version() != version_)
    fail(current_backward_op(),
         fmt::format("a tensor this op saved for backward was modified in place after it was "
                     "saved (version {} now, {} when saved); use an out-of-place op or clone() "
                     "before modifying it",
                     data_.version(), version_),
         {describe("saved", data_)});
  return data_;
}

Node::Node(std::string name)
    : name_(std::move(name)), sequence_(g_next_sequence++), autocast_state_(mmgrad::detail::autocast_state()) {}

Node::~Node() {
  std::vector<std::shared_ptr<Node>> pending = std::move(next);
  while (!pending.empty()) {
    std::shared_ptr<Node> n = std::move(pending.back());
    pending.pop_back();
    // If we hold the last reference, take over its edges before it dies, so its own
    // destructor finds nothing to recurse into.
    if (n && n.use_count() == 1) {
      for (auto& e : n->next) pending.push_back(std::move(e));
      n->next.clear();
    }
  }
}

std::vector<Tensor> FunctionNode::apply(const Tensor& grad_output) {
  if (!fn_)
    fail(name(),
         "backward through this part of the graph a second time: its saved tensors were freed "
         "after the first backward; pass retain_graph=true to the first backward if you need "
         "two");
  return fn_(grad_output);
}

std::vector<Tensor> AccumulateGrad::apply(const Tensor& grad_output) {
  auto leaf = leaf_.lock();
  if (!leaf) return {};
  Tensor t(leaf);
  NoGradGuard no_grad;
  if (!leaf->grad) {
    // The incoming gradient becomes the leaf's when the engine alone holds it (the usual
    // case: a fresh product of backward; the copy cost a pass over every parameter per
    // step); otherwise a private copy, since it may alias another tensor's gradient or a
    // tensor the caller holds.
    if (grad_output.dtype() == t.dtype() && exclusively_held(grad_output)) {
      leaf->grad = grad_output.impl_ptr();
    } else {
      Tensor g = grad_output.dtype() == t.dtype() ? grad_output.clone() : grad_output.to(t.dtype());
      leaf->grad = g.contiguous().impl_ptr();
    }
  } else {
    Tensor acc(leaf->grad);
    add_(acc, grad_output);
  }
  return {};
}

bool exclusively_held(const Tensor& t) {
  return t.defined() && t.impl_ptr().use_count() == 1 && t.impl().storage.use_count() == 1 && !t.requires_grad() &&
         t.grad_fn() == nullptr && t.is_contiguous();
}

bool needs_grad(std::initializer_list<Tensor> inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

bool needs_grad(const std::vector<Tensor>& inputs) {
  if (!GradMode::is_enabled()) return false;
  for (const Tensor& t : inputs)
    if (t.requires_grad()) return true;
  return false;
}

std::shared_ptr<Node> gradient_edge(const Tensor& t) {
  if (!t.defined() || !t.requires_grad()) return nullptr;
  if (t.grad_fn()) return t.grad_fn();
  return std::make_shared<AccumulateGrad>(t.impl_ptr());
}

void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn) {
  if (!needs_grad(inputs)) return;
  auto node = std::make_shared<FunctionNode>(name, std::move(fn));
  for (const Tensor& t : inputs) {
    node->next.push_back(gradient_edge(t));
    node->input_shapes.push_back(t.defined() ? t.shape() : Shape{});
  }
  if (anomaly_mode()) detail::check_forward(name, output, inputs, *node);
  output.impl().requires_grad = true;
  output.impl().grad_fn = std::move(node);
}

}  // namespace mmgrad::autograd
