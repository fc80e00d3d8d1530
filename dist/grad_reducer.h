// Averages parameter gradients over the ranks of a data-parallel run, overlapping the
// communication with backward (PyTorch DDP's design, simplified):
//  - parameters are grouped into buckets of about bucket_bytes, in reverse registration
//    order (roughly the order backward finishes them);
//  - while backward runs (inside a ReadyScope), the engine reports each parameter whose
//    gradient is complete; once every parameter of a bucket is, its gradients are copied
//    into one flat buffer and its all-reduce starts. Buckets start strictly in order, so
//    every rank issues the same collectives in the same order;
//  - finish() starts what is left, waits for everything, divides by the number of ranks and
//    writes the averages back into .grad.
// A parameter without a gradient on this rank contributes zeros and keeps no gradient.
#pragma once
#include <cstdint>
#include <memory>
#include <unordered_map>
#include <vector>

#include "autograd/engine.h"
#include "core/tensor.h"
#include "dist/communicator.h"

namespace mmgrad::dist {

class GradReducer {
 public:
  GradReducer(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes = 1 << 20);

  // While alive, backward() on this thread starts buckets as their gradients complete.
  // Use it around the backward of the last micro-batch of a step only.
  class ReadyScope {
   public:
    explicit ReadyScope(GradReducer& reducer);

   private:
    autograd::LeafGradReadyHook hook_;
  };

  // Starts the buckets not started yet, waits for all, averages and writes back. Returns the
  // milliseconds this thread spent waiting for communication.
  double finish();

  int64_t num_buckets() const { return static_cast<int64_t>(buckets_.size()); }

 private:
  struct Bucket {
    std::vector<size_t> params;  // indices into params_
    int64_t numel = 0;
    int64_t ready = 0;           // parameters of this bucket whose gradient is complete
    Tensor flat;
    std::unique_ptr<Work> work;
  };
  void on_ready(const TensorImpl* leaf);
  void launch_in_order();
  void launch(Bucket& b);

  Communicator& comm_;
  std::vector<Tensor> params_;
  std::vector<Bucket> buckets_;
  std::unordered_map<const TensorImpl*, size_t> bucket_of_;  // parameter -> bucket index
  size_t next_to_launch_ = 0;
};

}  // namespace mmgrad::dist
