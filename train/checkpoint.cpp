#include "train/checkpoint.h"

#include <algorithm>
#include <filesystem>
#include <map>

#include <fmt/format.h>

#include "autograd/anomaly.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/checksum.h"
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

TrainState read_state(const SafetensorsFile& file, const std::string& path) {
  TrainState s;
  s.step = to_int(file.metadata, "step", path);
  s.rng_seed = static_cast<uint64_t>(to_int(file.metadata, "rng_seed", path));
  s.rng_draws = static_cast<uint64_t>(to_int(file.metadata, "rng_draws", path));
  s.data_position = to_int(file.metadata, "data_position", path);
  s.config = file.metadata.count("config") ? file.metadata.at("config") : "";
  return s;
}

}  // namespace

namespace {

// CRC-32C over every tensor's name and bytes, in name order: what a checkpoint's
// "checksum" metadata holds, so that a file damaged after it was written (a bad disk, a
// partial copy) is detected on load instead of resuming from garbage.
std::string tensors_checksum(const NamedTensors& tensors) {
  std::vector<const std::pair<std::string, Tensor>*> sorted;
  for (const auto& nt : tensors) sorted.push_back(&nt);
  std::sort(sorted.begin(), sorted.end(), [](auto* a, auto* b) { return a->first < b->first; });
  uint32_t crc = 0;
  for (const auto* nt : sorted) {
    crc = crc32c(nt->first.data(), nt->first.size(), crc);
    const Tensor host = nt->second.to(Device::cpu()).contiguous();
    crc = crc32c(host.raw_data(), static_cast<size_t>(host.numel()) * dtype_size(host.dtype()), crc);
  }
  return fmt::format("crc32c:{:08x}", crc);
}

}  // namespace

void save_checkpoint(const std::string& path, const nn::Module& model, const Optimizer& optimizer,
                     const TrainState& state) {
  NamedTensors all;
  for (const auto& [name, t] : model.named_parameters()) all.emplace_back("model." + name, t);
  for (const auto& [name, t] : optimizer.state()) all.emplace_back("optim." + name, t);
  std::map<std::string, std::string> meta = {
      {"checksum", tensors_checksum(all)},
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

namespace {

// Copies the stored tensors into `destinations` (checkpoint key -> tensor) when every key is
// present with the right shape and nothing else is stored under the given prefixes; else
// lists the problems and changes nothing.
void load_matching(const std::string& path, const SafetensorsFile& file, const std::vector<std::pair<std::string, Tensor>>& destinations,
                   const std::vector<std::string>& prefixes) {
  std::map<std::string, Tensor> stored(file.tensors.begin(), file.tensors.end());
  std::vector<std::pair<Tensor, Tensor>> copies;
  std::vector<std::string> problems;
  std::map<std::string, bool> used;
  for (const auto& [key, dst] : destinations) {
    auto it = stored.find(key);
    if (it == stored.end()) {
      problems.push_back("missing " + key);
      continue;
    }
    used[key] = true;
    const Tensor& src = it->second;
    if (src.shape() != dst.shape())
      problems.push_back(fmt::format("{}: checkpoint has {}, the model {}", key, shape_str(src.shape()),
                                     shape_str(dst.shape())));
    else if (is_floating(src.dtype()) != is_floating(dst.dtype()))  // f16/bf16 for f32 is fine, i64 is not
      problems.push_back(fmt::format("{}: checkpoint has {} values, the model {}", key, dtype_name(src.dtype()),
                                     dtype_name(dst.dtype())));
    else if (!autograd::all_finite(src))  // never written by training (it skips such steps): a damaged file
      problems.push_back(fmt::format("{}: holds NaN or infinite values", key));
    else
      copies.emplace_back(dst, src);
  }
  for (const auto& [key, t] : stored) {
    bool covered = false;
    for (const auto& p : prefixes) covered = covered || key.rfind(p, 0) == 0;
    if (covered && !used.count(key)) problems.push_back("unexpected " + key);
  }
  if (!problems.empty()) {
    std::string list;
    for (size_t i = 0; i < problems.size() && i < 8; ++i) list += (i ? "; " : "") + problems[i];
    if (problems.size() > 8) list += fmt::format("; and {} more", problems.size() - 8);
    fail("checkpoint", fmt::format("'{}' does not match the model: {}", path, list));
  }
  NoGradGuard no_grad;
  for (auto& [dst, src] : copies) copy_(dst, src);
}

void check_format(const std::string& path, const std::map<std::string, std::string>& meta) {
  auto tag = meta.find("format");
  if (tag == meta.end() || tag->second != kFormat)
    fail("checkpoint", "'" + path + "' is not an mmgrad checkpoint (no '" + kFormat + "' format tag)");
}

SafetensorsFile load_checkpoint_file(const std::string& path) {
  SafetensorsFile file = load_safetensors(path);
  check_format(path, file.metadata);
  auto sum = file.metadata.find("checksum");  // checkpoints from before checksums have none
  if (sum != file.metadata.end() && sum->second != tensors_checksum(file.tensors))
    fail("checkpoint", fmt::format("'{}' is corrupt: its tensors do not match the checksum written with them ({}); "
                                   "the run folder keeps the last few checkpoints: resume from the folder "
                                   "(--resume RUN_DIR) to use the newest good one",
                                   path, sum->second));
  return file;
}

std::vector<std::pair<std::string, Tensor>> prefixed(const std::string& prefix, const NamedTensors& named) {
  std::vector<std::pair<std::string, Tensor>> out;
  for (const auto& [name, t] : named) out.emplace_back(prefix + name, t);
  return out;
}

}  // namespace

TrainState load_checkpoint(const std::string& path, nn::Module& model, Optimizer& optimizer) {
  const SafetensorsFile file = load_checkpoint_file(path);
  auto destinations = prefixed("model.", model.named_parameters());
  for (auto& d : prefixed("optim.", optimizer.state())) destinations.push_back(d);
  // Metadata first: a file that is refused for any reason changes nothing.
  const TrainState state = read_state(file, path);
  const int64_t optimizer_steps = to_int(file.metadata, "optimizer_steps", path);
  load_matching(path, file, destinations, {""});  // every stored tensor must be used
  optimizer.set_steps(optimizer_steps);
  return state;
}

TrainState load_model_weights(const std::string& path, nn::Module& model) {
  const SafetensorsFile file = load_checkpoint_file(path);
  const TrainState state = read_state(file, path);
  load_matching(path, file, prefixed("model.", model.named_parameters()), {"model."});
  return state;
}

std::string read_checkpoint_config(const std::string& path) {
  // The header alone: callers load the tensors afterwards, once.
  const std::map<std::string, std::string> meta = load_safetensors_metadata(path);
  check_format(path, meta);
  auto it = meta.find("config");
  if (it == meta.end() || it->second.empty())
    fail("checkpoint", "'" + path + "' has no configuration in its metadata");
  return it->second;
}

std::string save_rotating_checkpoint(const std::string& run_dir, const nn::Module& model, const Optimizer& optimizer,
                                     const TrainState& state, int64_t keep) {
  namespace fs = std::filesystem;
  const fs::path dir(run_dir);
  const fs::path step_file = dir / fmt::format("checkpoint-{:08d}.safetensors", state.step);
  save_checkpoint(step_file.string(), model, optimizer, state);  // temporary file + rename
  // checkpoint.safetensors becomes the same file: a hard link made under a temporary name
  // and renamed over the old one, so the name always holds a complete checkpoint.
  const fs::path latest = dir / "checkpoint.safetensors", tmp = dir / "checkpoint.safetensors.link.tmp";
  std::error_code ec;
  fs::remove(tmp, ec);
  fs::create_hard_link(step_file, tmp, ec);
  if (ec) fs::copy_file(step_file, tmp, fs::copy_options::overwrite_existing);  // no hard links here
  fs::rename(tmp, latest);
  // Keep the newest `keep` step files.
  std::vector<fs::path> steps;
  for (const auto& e : fs::directory_iterator(dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0 && e.path().extension() == ".safetensors") steps.push_back(e.path());
  }
  std::sort(steps.begin(), steps.end());
  for (size_t i = 0; i + static_cast<size_t>(std::max<int64_t>(keep, 1)) < steps.size(); ++i) fs::remove(steps[i], ec);
  return latest.string();
}

std::string newest_good_checkpoint(const std::string& run_dir, const std::function<void(const std::string&)>& warn) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (!fs::is_directory(run_dir, ec)) fail("checkpoint", "'" + run_dir + "' is not a run folder");
  std::vector<fs::path> candidates;
  for (const auto& e : fs::directory_iterator(run_dir)) {
    const std::string name = e.path().filename().string();
    if (name.rfind("checkpoint-", 0) == 0 && e.path().extension() == ".safetensors") candidates.push_back(e.path());
  }
  std::sort(candidates.rbegin(), candidates.rend());  // newest step first (zero-padded names)
  if (fs::exists(fs::path(run_dir) / "checkpoint.safetensors")) candidates.push_back(fs::path(run_dir) / "checkpoint.safetensors");
  for (const auto& c : candidates) {
    try {
      load_checkpoint_file(c.string());
      return c.string();
    } catch (const Error& e) {
      if (e.op() == "allocate") throw;  // out of memory says nothing about the file: no skipping
      if (warn) warn(e.what());
    }
  }
  fail("checkpoint", "no readable checkpoint in '" + run_dir + "'");
}

}  // namespace mmgrad::train
