// The recorded graph: one Node per differentiable op application.
//
// A Node knows the Nodes that produced its inputs (`next`) and how to turn the gradient of
// its output into gradients of its inputs. Leaves that require grad end in an
// AccumulateGrad node that adds into tensor.grad.
#pragma once
#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::autograd {

// A tensor kept for backward. It holds an alias without autograd state (so saving an op's
// own output cannot form a reference cycle) and the storage version at save time, so that
// a later in-place change is reported instead of silently giving a wrong gradient.
class SavedTensor {
 public:
  SavedTensor() = default;
  explicit SavedTensor(const Tensor& t);
  const Tensor& get() const;  // throws if the tensor was modified in place since saved

 private:
  Tensor data_;
  uint64_t version_ = 0;
};

class Node {
 public:
  explicit Node(std::string name);
  // Frees the chain of nodes behind this one iteratively: a long graph destroyed
  // recursively would overflow the stack.
  virtual ~Node();

  const std::string& name() const { return name_; }
  uint64_t sequence() const { return sequence_; }
  // The autocast guards alive when the node was made (autograd/autocast.h): its backward
  // runs under the same ones.
  uint8_t autocast_state() const { return autocast_state_; }
  // One entry per input of the op; null where that input needs no gradient.
  std::vector<std::shared_ptr<Node>> next;
  // The shape of each input, to check the gradients that apply() returns.
  std::vector<Shape> input_shapes;
  // The module the op belongs to, for anomaly mode's messages (set only in that mode).
  std::string module;

  // Gradients w.r.t. the op's inputs, given the gradient w.r.t. its output.
  virtual std::vector<Tensor> apply(const Tensor& grad_output) = 0;
  // Drops saved tensors once backward has used them (unless the graph is retained).
  virtual void release() {}

 private:
  std::string name_;
  uint64_t sequence_;
  uint8_t autocast_state_;
};

using BackwardFn = std::function<std::vector<Tensor>(const Tensor& grad_output)>;

class FunctionNode final : public Node {
 public:
  FunctionNode(std::string name, BackwardFn fn) : Node(std::move(name)), fn_(std::move(fn)) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  void release() override { fn_ = nullptr; }

 private:
  BackwardFn fn_;
};

class AccumulateGrad final : public Node {
 public:
  explicit AccumulateGrad(const std::shared_ptr<TensorImpl>& leaf)
      : Node("AccumulateGrad"), leaf_(leaf) {}
  std::vector<Tensor> apply(const Tensor& grad_output) override;
  // The leaf this node adds into (null once it is gone).
  std::shared_ptr<TensorImpl> leaf() const { return leaf_.lock(); }

 private:
  std::weak_ptr<TensorImpl> leaf_;
};

// True when t is a dense gradient that only the caller's one handle reaches: no other
// tensor, view or saved value shares its storage and it is not part of a recorded graph, so
// backward may write into it or hand it over instead of copying.
bool exclusively_held(const Tensor& t);

// True when grad mode is on and some input requires grad: then the op must record.
bool needs_grad(std::initializer_list<Tensor> inputs);
bool needs_grad(const std::vector<Tensor>& inputs);

// Makes `output` the result of a recorded op `name` over `inputs`, if any needs a gradient.
// `fn` returns one gradient per input (undefined for inputs without gradient).
void record(const char* name, Tensor& output, const std::vector<Tensor>& inputs, BackwardFn fn);

// The node that receives the gradient for `t` (its grad_fn, or an AccumulateGrad for a
// leaf that requires grad), or null.
std::shared_ptr<Node> gradient_edge(const Tensor& t);

}  // namespace mmgrad::autograd
