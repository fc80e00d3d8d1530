// Checkpoint loading into a model and optimizer: on top of the safetensors checks, names,
// shapes and dtypes against the model, the checksum, the optimizer state and the training
// state in the metadata. A refused file must leave the model untouched.
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "fuzz/fuzz_input.h"
#include "models/layers.h"
#include "train/checkpoint.h"

using namespace mmgrad;

namespace {
struct Target {
  Generator init{1};
  nn::Mlp model{4, 8, nn::Activation::Gelu, init};
  train::AdamW optimizer{model.named_parameters(), 0.1};
  std::vector<Tensor> initial;
  Target() {
    for (const auto& [name, p] : model.named_parameters()) initial.push_back(p.clone());
  }
  bool model_unchanged() {
    auto params = model.named_parameters();
    for (size_t i = 0; i < params.size(); ++i)
      if (!allclose(params[i].second, initial[i], 0, 0)) return false;
    return true;
  }
  void reset() {
    auto params = model.named_parameters();
    for (size_t i = 0; i < params.size(); ++i) {
      NoGradGuard no_grad;
      copy_(params[i].second, initial[i]);
    }
  }
};
}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size) {
  static Target target;
  std::string path = fuzz::input_as_file(data, size, "checkpoint.safetensors");
  bool ok = fuzz::parses_or_refuses_clearly([&] { train::load_checkpoint(path, target.model, target.optimizer); }, path);
  if (!ok) fuzz::require(target.model_unchanged(), "a refused checkpoint leaves the model untouched");
  target.reset();
  ok = fuzz::parses_or_refuses_clearly([&] { train::load_model_weights(path, target.model); }, path);
  if (!ok) fuzz::require(target.model_unchanged(), "refused weights leave the model untouched");
  target.reset();
  fuzz::parses_or_refuses_clearly([&] { train::read_checkpoint_config(path); }, path);
  return 0;
}
