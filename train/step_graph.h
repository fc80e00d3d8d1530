// The forward and backward of a training step recorded once as a CUDA graph and replayed
// (the run key cuda_graph = true; backends/cuda/graph.h says what recording asks).
//
// The first call records the step on its inputs (every micro-batch of it) and replays it;
// later calls copy new inputs into the recorded input tensors and replay. Each replay
// leaves every parameter's gradient where the recorded backward put it, and the losses in
// device tensors: the clipping, the optimizer (whose learning rate and bias corrections
// change every step) and the host's bookkeeping run after it as usual.
//
// The optimizer stays outside the graph on purpose: it is about ten launches (multi-tensor
// kernels), while forward and backward are about a thousand.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "models/objectives.h"

namespace mmgrad::train {

struct StepLosses {
  Tensor total;                                       // the mean over micro-batches, a scalar on the device
  std::vector<std::pair<std::string, Tensor>> parts;  // likewise, per objective
};

class StepGraph {
 public:
  // Fails with a clear error in a build without CUDA.
  StepGraph(const nn::ClipModel& model, const nn::ObjectiveWeights& weights);
  ~StepGraph();

  // One step's forward and backward on `micro_batches` (the same count and shapes on every
  // call). The parameters' gradients must be unset (Optimizer::zero_grad) on the first call:
  // the recorded backward writes them, it does not add to them.
  StepLosses run(const std::vector<nn::LossInputs>& micro_batches);

  bool recorded() const;
  int64_t nodes() const;             // kernels and copies in the graph
  uint64_t matmul_flops() const { return flops_; }  // one replay's (counted while recording)

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
  uint64_t flops_ = 0;
};

// Whether this build can record CUDA graphs.
bool cuda_graphs_built();

}  // namespace mmgrad::train
