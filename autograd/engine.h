// Reverse-mode differentiation over the recorded graph.
#pragma once
#include "core/tensor.h"

namespace mmgrad::autograd {

// Propagates `grad` (ones for a scalar root when undefined) from `root` to every leaf that
// requires grad, adding into their .grad. Frees the graph unless retain_graph.
void backward(const Tensor& root, const Tensor& grad = Tensor(), bool retain_graph = false);

// The op whose backward is running on this thread ("backward" outside one): named in errors.
const char* current_backward_op();

}  // namespace mmgrad::autograd
