#include "train/checkpoint.h"

#include <map>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "train/safetensors.h"

namespace mmgrad::train {
namespace {

constexpr const char* kFormat = "mmgrad-checkpoint 1";

int64_t to_int(const std::map<std::string, std::string>& meta, const std::string& key, const std::string& path) {
  auto it = meta.find(key);
  if (it == meta.end()) fail("checkpoint", "'" + path + "' has no '" + key + "' in its metadata");
  try {
    size_t used = 0;
    long long v = std::stoll(it->second, &used);
    if (used == it->second.size()) return v;
  } catch (const std::exception&) {
  }
  fail("checkpoint", "'" + path + "': metadata '" + key + "' is not an integer: '" + it->second + "'");
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state) {
  NamedTensors all;
  for (const auto& [name, t] : model.named_parameters()) all.emplace_back("model." + name, t);
  for (const auto& [name, t] : optimizer.state()) all.emplace_back("optim." + name, t);
  std::map<std::string, std::string> meta = {
      {"format", kFormat},
      {"step", std::to_string(state.step)},
      {"optimizer_steps", std::to_string(optimizer.steps())},
      {"rng_seed", std::to_string(state.rng_seed)},
      {"rng_draws", std::to_string(state.rng_draws)},
      {"data_position", std::to_string(state.data_position)},
      {"config", state.config},
  };
  save_safetensors(path, all, meta);
}

TrainState load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer) {
  SafetensorsFile file = load_safetensors(path);
  auto fmt_it = file.metadata.find("format");
  if (fmt_it == file.metadata.end() || fmt_it->second != kFormat)
    fail("checkpoint", "'" + path + "' is not an mmgrad checkpoint (no '" + kFormat + "' format tag)");
  std::map<std::string, Tensor> stored(file.tensors.begin(), file.tensors.end());

  // Match every destination first; report all problems at once; then copy.
  std::vector<std::pair<Tensor, Tensor>> copies;
  std::vector<std::string> problems;
  std::map<std::string, bool> used;
  auto match = [&](const std::string& key, const Tensor& dst) {
    auto it = stored.find(key);
    if (it == stored.end()) {
      problems.push_back("missing " + key);
      return;
    }
    used[key] = true;
    if (it->second.shape() != dst.shape())
      problems.push_back(fmt::format("{}: checkpoint has {}, the model {}", key, shape_str(it->second.shape()),
                                     shape_str(dst.shape())));
    else
      copies.emplace_back(dst, it->second);
  };
  for (const auto& [name, t] : model.named_parameters()) match("model." + name, t);
  for (const auto& [name, t] : optimizer.state()) match("optim." + name, t);
  for (const auto& [key, t] : stored)
    if (!used.count(key)) problems.push_back("unexpected " + key);
  if (!problems.empty()) {
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 8; ++i) list += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) list += fmt::format("; and {} more", problems.size() - 8);
    fail("checkpoint", fmt::format("'{}' does not match the model: {}", path, list));
  }
  {
    NoGradGuard no_grad;
    for (auto& [dst, src] : copies) copy_(dst, src);
  }
  optimizer.set_steps(to_int(file.metadata, "optimizer_steps", path));
  TrainState s;
  s.step = to_int(file.metadata, "step", path);
  s.rng_seed = static_cast<uint64_t>(to_int(file.metadata, "rng_seed", path));
  s.rng_draws = static_cast<uint64_t>(to_int(file.metadata, "rng_draws", path));
  s.data_position = to_int(file.metadata, "data_position", path);
  s.config = file.metadata.count("config") ? file.metadata.at("config") : "";
  return s;
}

}  // namespace mmgrad::train
