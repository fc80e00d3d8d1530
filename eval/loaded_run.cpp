#include "eval/loaded_run.h"

#include <filesystem>

#include "core/rng.h"
#include "train/run_files.h"

namespace mmgrad::eval {

LoadedRun load_run(const std::string& checkpoint) {
  LoadedRun r;
  r.checkpoint = checkpoint;
  train::apply_json(r.config, train::read_checkpoint_config(checkpoint));
  train::validate(r.config);
  r.tokenizer = train::load_run_tokenizer(r.config, std::filesystem::path(checkpoint).parent_path().string());
  Generator init(r.config.seed);
  r.model = std::make_unique<nn::ClipModel>(r.config.model, init);
  r.state = train::load_model_weights(checkpoint, *r.model);
  r.model->eval();
  return r;
}

}  // namespace mmgrad::eval
