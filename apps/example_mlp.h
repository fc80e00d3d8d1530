// The worked example the README's main command runs until the multimodal models land:
// an MLP trained with mmgrad's autograd on a synthetic two-spirals task.
#pragma once
#include <cstdint>

namespace mmgrad::apps {

struct MlpOptions {
  int64_t steps = 600;
  int64_t hidden = 64;
  int64_t points = 1024;  // per class
  double lr = 0.3;
  double momentum = 0.9;
  uint64_t seed = 0;
  int64_t log_every = 50;
};

// Trains and prints a line per logged step; returns the final training accuracy.
double run_mlp_example(const MlpOptions& options);

}  // namespace mmgrad::apps
