// Anomaly mode: find the first NaN or infinity where it is made. While it is on, every
// recorded op checks its output in forward, and backward checks every gradient a node
// returns; the first non-finite one stops with an error naming the op (forward or backward),
// its operands' shapes, and the module it belongs to: the module of the nearest parameter
// upstream of it ("text_model.encoder.layers.0.mlp.fc1"), from the parameter names given
// when the mode was turned on. It costs a reduction per op: a debugging mode (the training
// key detect_anomaly, or MMGRAD_DETECT_ANOMALY=1). Off, nothing is checked or stored.
#pragma once
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::autograd {

class Node;

// Turns anomaly mode on for this thread while alive; `parameters` (name, tensor) name the
// modules in the messages.
class DetectAnomaly {
 public:
  explicit DetectAnomaly(const std::vector<std::pair<std::string, Tensor>>& parameters = {});
  ~DetectAnomaly();
  DetectAnomaly(const DetectAnomaly&) = delete;
  DetectAnomaly& operator=(const DetectAnomaly&) = delete;

 private:
  bool previous_;
};

// True when every element of a floating tensor is finite (integer tensors always are).
bool all_finite(const Tensor& t);

bool anomaly_mode();
bool anomaly_mode_from_environment();  // MMGRAD_DETECT_ANOMALY=1

namespace detail {
// Called by record(): checks the output, and gives the node its module path.
void check_forward(const char* op, const Tensor& output, const std::vector<Tensor>& inputs, Node& node);
// Called by the engine after a node's backward.
void check_backward(const Node& node, const std::vector<Tensor>& input_grads);
}  // namespace detail

}  // namespace mmgrad::autograd
