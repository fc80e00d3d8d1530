// The engine, readable in one screen:
//  1. walk the graph from the root and count, for each node, how many edges reach it;
//  2. run nodes in reverse creation order once all their consumers have contributed,
//     summing the gradients that arrive at each node;
//  3. free each node's saved tensors as soon as it has run (unless retain_graph).
#include "autograd/engine.h"

#include <queue>
#include <unordered_map>

#include <fmt/format.h>

#include "autograd/anomaly.h"
#include "autograd/autocast.h"
#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"

namespace mmgrad::autograd {
namespace {

// A gradient sum that only the engine holds takes the next term in place: the residual
// stream's gradient collects a term per branch, and a fresh sum each time wrote a new buffer
// of cold memory.
bool accumulates_in_place(const Tensor& sum, const Tensor& term) {
  return exclusively_held(sum) && !term.requires_grad() && sum.dtype() == term.dtype() &&
         sum.device() == term.device() && sum.shape() == term.shape() && !sum.is_same(term);
}

thread_local const char* t_current_op = "backward";
thread_local LeafGradReadyFn t_leaf_ready;

struct LaterFirst {
  bool operator()(Node* a, Node* b) const { return a->sequence() < b->sequence(); }
};
}  // namespace

const char* current_backward_op() { return t_current_op; }

LeafGradReadyHook::LeafGradReadyHook(LeafGradReadyFn fn) : previous_(std::move(t_leaf_ready)) {
  t_leaf_ready = std::move(fn);
}
LeafGradReadyHook::~LeafGradReadyHook() { t_leaf_ready = std::move(previous_); }

void backward(const Tensor& root, const Tensor& grad, bool retain_graph) {
  if (!root.requires_grad())
    fail("backward", "the tensor does not require grad and has no grad_fn: nothing to "
                     "differentiate (did you call set_requires_grad on the inputs?)",
         {describe("root", root)});
  Tensor seed = grad;
  if (!seed.defined()) {
    if (root.numel() != 1)
      fail("backward", "a gradient must be given for a non-scalar output",
           {describe("root", root)});
    seed = ones(root.shape(), root.dtype(), root.device());
  } else if (seed.shape() != root.shape() || seed.dtype() != root.dtype() ||
             seed.device() != root.device()) {
    fail("backward", "the given gradient must match the output's shape, dtype and device",
         {describe("root", root), describe("grad", seed)});
  }
  NoGradGuard no_grad;
  std::shared_ptr<Node> root_node = gradient_edge(root);

  // 1. Dependency counts over everything reachable from the root.
  std::unordered_map<Node*, int> pending;
  std::vector<Node*> stack{root_node.get()};
  pending[root_node.get()] = 0;
  while (!stack.empty()) {
    Node* n = stack.back();
    stack.pop_back();
    for (auto& next : n->next) {
      if (!next) continue;
      auto [it, fresh] = pending.try_emplace(next.get(), 0);
      ++it->second;
      if (fresh) stack.push_back(next.get());
    }
  }

  // A leaf used several times has one AccumulateGrad node per use: its gradient is
  // complete when the last of them has run.
  std::unordered_map<const TensorImpl*, int> leaf_uses;
  if (t_leaf_ready)
    for (const auto& [node, count] : pending)
      if (auto* acc = dynamic_cast<AccumulateGrad*>(node))
        if (auto leaf = acc->leaf()) ++leaf_uses[leaf.get()];

  // 2. Process in reverse creation order; a node runs when all its consumers have.
  std::unordered_map<Node*, Tensor> grads;
  grads[root_node.get()] = seed;
  std::priority_queue<Node*, std::vector<Node*>, LaterFirst> ready;
  ready.push(root_node.get());
  while (!ready.empty()) {
    Node* n = ready.top();
    ready.pop();
    Tensor g = std::move(grads[n]);
    grads.erase(n);
    t_current_op = n->name().c_str();
    std::vector<Tensor> input_grads;
    // The node's backward multiplies under the autocast guards of its forward.
    const uint8_t autocast_outside = mmgrad::detail::autocast_state();
    mmgrad::detail::set_autocast_state(n->autocast_state());
    try {
      // A node that no gradient reached (every path to it was undefined) passes none on.
      if (g.defined()) input_grads = n->apply(g);
      if (anomaly_mode()) detail::check_backward(*n, input_grads);
    } catch (...) {
      t_current_op = "backward";
      mmgrad::detail::set_autocast_state(autocast_outside);
      throw;
    }
    mmgrad::detail::set_autocast_state(autocast_outside);
    t_current_op = "backward";
    if (!leaf_uses.empty())
      if (auto* acc = dynamic_cast<AccumulateGrad*>(n))
        if (auto leaf = acc->leaf(); leaf && --leaf_uses[leaf.get()] == 0) t_leaf_ready(leaf.get());
    if (!retain_graph) n->release();
    for (size_t i = 0; i < n->next.size(); ++i) {
      Node* next = n->next[i].get();
      if (!next) continue;
      if (i < input_grads.size() && input_grads[i].defined()) {
        const Tensor& gi = input_grads[i];
        if (gi.shape() != n->input_shapes[i])
          fail(n->name(), fmt::format("internal error: backward returned a gradient of shape "
                                      "{} for input {} of shape {}",
                                      shape_str(gi.shape()), i, shape_str(n->input_shapes[i])));
        Tensor& slot = grads[next];
        if (!slot.defined())
          slot = gi;
        else if (accumulates_in_place(slot, gi))
          add_(slot, gi);
        else
          slot = add(slot, gi);
      }
      if (--pending[next] == 0) ready.push(next);
    }
  }
}

}  // namespace mmgrad::autograd
