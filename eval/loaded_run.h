// A trained run loaded for inference from its checkpoint: the resolved configuration (from
// the checkpoint's header), the tokenizer (the copy in the checkpoint's folder) and the
// model with its weights, in eval mode on the CPU. What `mmgrad eval | embed | search |
// caption | zeroshot` start from, and examples/embed_checkpoint.cpp.
#pragma once
#include <memory>
#include <string>

#include "data/tokenizer.h"
#include "models/clip.h"
#include "train/checkpoint.h"
#include "train/run_config.h"

namespace mmgrad::eval {

struct LoadedRun {
  std::string checkpoint;
  train::RunConfig config;
  train::TrainState state;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::unique_ptr<nn::ClipModel> model;
};

LoadedRun load_run(const std::string& checkpoint);

}  // namespace mmgrad::eval
