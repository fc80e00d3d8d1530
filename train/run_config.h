// The resolved configuration of a training run: the model shapes plus the training
// hyperparameters, addressable by flat key names ("vision_width", "lr", ...) so that presets,
// `--set key=value` and the copy saved in the run folder and every checkpoint all use one
// vocabulary.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "models/config.h"
#include "models/objectives.h"

namespace mmgrad::train {

struct RunConfig {
  nn::ModelConfig model;

  // Optimisation.
  std::string optimizer = "adamw";  // "adamw" or "sgd"
  int64_t steps = 600;
  int64_t batch_size = 64;          // samples per optimizer step
  int64_t accum_steps = 1;          // micro-batches per step (batch_size must divide)
  double lr = 2e-3, min_lr = 1e-5;
  int64_t warmup_steps = 100;
  double weight_decay = 0.1;
  double momentum = 0.9;            // SGD only
  double grad_clip = 1.0;           // global L2 norm; 0 disables
  int64_t max_bad_steps = 5;        // consecutive non-finite steps before the run stops

  // Objectives, weighted (models/objectives.h).
  double w_contrastive = 1.0, w_itm = 1.0, w_caption = 1.0;
  bool hard_negatives = true;
  double negative_scale = 1;        // see nn::ObjectiveWeights: 1 = softmax of the cosines (the
                                    // MODELS.md wording); 0 = ALBEF's learned logit scale

  // Data: the built-in shapes dataset (data/shapes.h) and the tokenizer trained on it.
  std::string dataset = "shapes";
  int64_t train_size = 1000000;     // procedural, so it can be large
  int64_t eval_size = 1000;         // held-out samples evaluated
  int64_t tokenizer_vocab = 320;    // bytes + merges + special tokens
  uint64_t seed = 0;

  // Logging and checkpoints.
  int64_t log_every = 10;
  int64_t checkpoint_every = 200;   // and always at the end
};

// "shapes-small" (the main command's default), "clip-tiny", "clip-b32". Throws naming the
// known presets.
RunConfig run_preset(const std::string& name);
std::vector<std::string> run_preset_names();

// Sets one key from its text value. An unknown key names the nearest valid one; a value of
// the wrong type or out of range names the key and the value.
void set_value(RunConfig& c, const std::string& key, const std::string& value);
// "key=value" (as given to --set).
void set_assignment(RunConfig& c, const std::string& assignment);

// Cross-field checks (heads divide widths, batch divides into micro-batches, ...).
void validate(const RunConfig& c);

// Every key with its current value, as a JSON object (stable key order).
std::string to_json(const RunConfig& c);
// Sets the keys of a JSON object (a config file may hold a few keys; a saved configuration
// holds them all). Unknown keys and bad values are errors as in set_value.
void apply_json(RunConfig& c, const std::string& text);

// All key names, for --help and suggestions.
std::vector<std::string> config_keys();

}  // namespace mmgrad::train
