// Reverse-mode differentiation over the recorded graph.
#pragma once
#include <functional>

#include "core/tensor.h"

namespace mmgrad::autograd {

// Propagates `grad` (ones for a scalar root when undefined) from `root` to every leaf that
// requires grad, adding into their .grad. Frees the graph unless retain_graph.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

// Called by backward() when the gradient of a leaf for this pass is complete: every
// AccumulateGrad node of that leaf has run. Data-parallel training starts the all-reduce of
// a gradient bucket from here while backward still runs on (dist/grad_reducer.h). At most
// one hook is active per thread; the guard restores the previous one.
using LeafGradReadyFn = std::function<void(const TensorImpl* leaf)>;
class LeafGradReadyHook {
 public:
  explicit LeafGradReadyHook(LeafGradReadyFn fn);
  ~LeafGradReadyHook();
  LeafGradReadyHook(const LeafGradReadyHook&) = delete;
  LeafGradReadyHook& operator=(const LeafGradReadyHook&) = delete;

 private:
  LeafGradReadyFn previous_;
};

// The op whose backward is running on this thread ("backward" outside one): named in errors.
const char* current_backward_op();

}  // namespace mmgrad::autograd
