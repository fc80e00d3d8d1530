// Training checkpoints: model parameters, optimizer state, step, RNG position and data
// position in one safetensors file (written to a temporary file and renamed), so a resumed
// run continues exactly where the saved one was.
#pragma once
#include <cstdint>
#include <functional>
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

// The checkpoint of a run: writes <run_dir>/checkpoint-<step>.safetensors, makes
// <run_dir>/checkpoint.safetensors the same file (never a half-written one, even if the
// process is killed mid-save), and deletes step files beyond the newest `keep`. Each file
// carries a CRC-32C of its tensors, checked on load (a mismatch is a clear error).
// Returns the path of checkpoint.safetensors.
std::string save_rotating_checkpoint(const std::string& run_dir, const nn::Module& model, const Optimizer& optimizer,
                                     const TrainState& state, int64_t keep);

// The newest checkpoint of a run folder that reads back with a good checksum; each one that
// does not is passed to `warn` (with the reason) and skipped. An error when none is good.
std::string newest_good_checkpoint(const std::string& run_dir,
                                   const std::function<void(const std::string&)>& warn = {});

// The resolved configuration stored in a checkpoint's metadata (an error if there is none).
std::string read_checkpoint_config(const std::string& path);

}  // namespace mmgrad::train
