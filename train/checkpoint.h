// Training checkpoints: model parameters, optimizer state, step, RNG position and data
// position in one safetensors file (written to a temporary file and renamed), so a resumed
// run continues exactly where the saved one was.
#pragma once
#include <cstdint>
#include <string>

#include "models/module.h"
#include "train/optimizer.h"

namespace mmgrad::train {

struct TrainState {
  int64_t step = 0;
  uint64_t rng_seed = 0, rng_draws = 0;  // the training Generator
  int64_t data_position = 0;             // samples consumed
  std::string config;                    // the resolved configuration (opaque text)
};

void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state);

// Loads into an existing model and optimizer of the same structure. Names or shapes that do
// not match are an error listing them; nothing is modified unless everything matches.
TrainState load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer);

// The model parameters alone (for evaluation and inference); the optimizer state is ignored.
TrainState load_model_weights(const std::string& path, nn::Module& model);

// The resolved configuration stored in a checkpoint's metadata (an error if there is none).
std::string read_checkpoint_config(const std::string& path);

}  // namespace mmgrad::train
