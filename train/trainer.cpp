#include "train/trainer.h"

#include <atomic>
#include <chrono>
#include <cmath>
#include <csignal>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/atomic_file.h"
#include "core/json.h"
#include "core/rng.h"
#include "dist/communicator.h"
#include "dist/grad_reducer.h"
#include "models/objectives.h"
#include "train/checkpoint.h"
#include "train/optimizer.h"
#include "train/progress.h"
#include "train/step_graph.h"
#include "train/tensorboard.h"
#include "train/throughput.h"
#include "autograd/anomaly.h"
#include "autograd/flops.h"

namespace mmgrad::train {
namespace {

std::atomic<int> g_stop_signal{0};
extern "C" void on_stop_signal(int sig) { g_stop_signal.store(sig); }

// Installs the SIGINT/SIGTERM handlers for the length of a run and restores the old ones.
class StopSignals {
 public:
  StopSignals() {
    g_stop_signal.store(0);
    old_int_ = std::signal(SIGINT, on_stop_signal);
    old_term_ = std::signal(SIGTERM, on_stop_signal);
  }
  ~StopSignals() {
    std::signal(SIGINT, old_int_);
    std::signal(SIGTERM, old_term_);
  }
  static bool requested() { return g_stop_signal.load() != 0; }

 private:
  void (*old_int_)(int);
  void (*old_term_)(int);
};

std::unique_ptr<Optimizer> make_optimizer(const nn::ClipModel& model, const RunConfig& c) {
  if (c.optimizer == "sgd") return std::make_unique<SGD>(model.named_parameters(), c.momentum, c.weight_decay);
  return std::make_unique<AdamW>(model.named_parameters(), c.weight_decay);
}

// Keeps the metrics lines of steps before `first_step` (a resumed run continues the file
// of the run it resumes; lines of steps it will redo are dropped).
void trim_metrics(const std::string& path, int64_t first_step) {
  std::ifstream in(path);
  if (!in) return;
  std::string kept, line;
  while (std::getline(in, line)) {
    try {
      const json::Value v = json::Value::parse(line);
      const json::Value* step = v.find("step");
      // "step" counts completed steps, so line k belongs to a run that has done k steps.
      if (step && step->is_number() && step->as_int("step") <= first_step) kept += line + "\n";
    } catch (const Error&) {
      // A torn last line from a killed run: drop it.
    }
  }
  write_file_atomically(path, "metrics", [&](std::ostream& out) { out << kept; });
}

// Running means of the logged values between two log lines.
struct Window {
  int64_t steps = 0;
  double loss = 0, ms = 0;
  uint64_t flops = 0;  // matmul FLOPs of the window's steps
  std::vector<std::pair<std::string, double>> parts;
  void add(double l, const std::vector<std::pair<std::string, double>>& p, double step_ms) {
    if (parts.empty())
      for (const auto& [name, v] : p) parts.emplace_back(name, 0.0);
    for (size_t i = 0; i < p.size() && i < parts.size(); ++i) parts[i].second += p[i].second;
    loss += l, ms += step_ms, ++steps;
  }
  std::vector<std::pair<std::string, double>> mean_parts() const {
    auto m = parts;
    for (auto& [name, v] : m) v /= static_cast<double>(std::max<int64_t>(steps, 1));
    return m;
  }
};

}  // namespace

std::string checkpoint_path(const std::string& run_dir) { return run_dir + "/checkpoint.safetensors"; }
std::string metrics_path(const std::string& run_dir) { return run_dir + "/metrics.jsonl"; }

TrainSummary train_model(nn::ClipModel& model, const RunConfig& c, const BatchSource& batches,
                         const TrainOptions& opt) {
  validate(c);
  dist::SingleCommunicator single;
  dist::Communicator& comm = opt.comm ? *opt.comm : single;
  const int ranks = comm.size();
  const bool lead = comm.rank() == 0;  // prints, writes metrics and checkpoints
  if (c.batch_size % (c.accum_steps * ranks) != 0)
    fail("train", fmt::format("batch_size {} must split evenly into accum_steps {} micro-batches over {} ranks",
                              c.batch_size, c.accum_steps, ranks));
  dist::check_same_on_all_ranks(comm, "configuration", to_json(c));
  // The run's key decides (config.json records it); MMGRAD_RECOMPUTE, which sets the
  // process's starting value, would otherwise be ignored without a word.
  if (lead && recompute_set_by_environment() && recompute_from_environment() != c.recompute)
    fmt::print(stderr, "warning: MMGRAD_RECOMPUTE={} is overridden by the run's key recompute={} (--set recompute=...)\n",
               std::getenv("MMGRAD_RECOMPUTE"), c.recompute ? "true" : "false");
  RecomputeGuard recompute(c.recompute);  // process-wide; restored when training returns
  if (lead && !std::filesystem::is_directory(opt.run_dir))
    fail("train", "the run folder '" + opt.run_dir + "' does not exist");
  model.train();
  std::unique_ptr<Optimizer> optimizer = make_optimizer(model, c);
  const NamedTensors params = model.named_parameters();
  const Device device = params.front().second.device();  // batches go where the model is
  Generator gen(c.seed + 1);  // draws the hard negatives
  const nn::ObjectiveWeights weights{c.w_contrastive, c.w_itm, c.w_caption, c.hard_negatives, c.negative_scale};

  TrainState state;
  state.config = to_json(c);
  if (!opt.resume.empty()) {
    state = load_checkpoint(opt.resume, model, *optimizer);
    gen.manual_seed(state.rng_seed);
    gen.set_draws(state.rng_draws);
    state.config = to_json(c);
  }
  if (ranks > 1) {
    // Every rank starts from rank 0's parameters and optimizer state, at the same point.
    dist::check_same_on_all_ranks(comm, "resume point (step, data position, RNG)",
                                  fmt::format("{} {} {} {}", state.step, state.data_position, state.rng_seed,
                                              state.rng_draws));
    std::vector<Tensor> shared;
    for (const auto& [name, p] : params) shared.push_back(p);
    for (const auto& [name, t] : optimizer->state()) shared.push_back(t);
    dist::broadcast_tensors(comm, shared);
  }
  // Any real communicator (even of one rank: the 1-GPU NCCL check) averages gradients.
  std::unique_ptr<dist::GradReducer> reducer;
  if (comm.name() != "single") {
    std::vector<Tensor> trainable;
    for (const auto& [name, p] : params) trainable.push_back(p);
    reducer = std::make_unique<dist::GradReducer>(comm, trainable, c.bucket_kib * 1024);
  }
  const int64_t first_step = state.step;
  if (first_step >= c.steps)
    fail("train", fmt::format("the checkpoint is at step {}, which is not before steps = {} (raise steps to "
                              "train further)", first_step, c.steps));
  std::ofstream metrics;
  std::unique_ptr<EventWriter> events;  // TensorBoard, beside metrics.jsonl
  if (lead) {
    events = std::make_unique<EventWriter>(opt.run_dir);
    trim_metrics(metrics_path(opt.run_dir), first_step);
    metrics.open(metrics_path(opt.run_dir), std::ios::app);
    if (!metrics) fail("train", "cannot write '" + metrics_path(opt.run_dir) + "'");
  }

  const int64_t micro = c.batch_size / c.accum_steps;  // samples of one micro-batch, all ranks together
  const int64_t shard = micro / ranks;                 // this rank's part of it
  const double max_logit_scale = std::log(100.0);
  TrainSummary summary;
  summary.first_step = first_step;
  Progress progress(c.steps, "train", first_step, lead);
  StopSignals signals;
  Window window;
  int64_t bad_in_a_row = 0;
  auto save = [&](int64_t steps_done) {
    state.step = steps_done;
    state.rng_seed = gen.seed();
    state.rng_draws = gen.draws();
    summary.checkpoint = checkpoint_path(opt.run_dir);
    if (lead) save_rotating_checkpoint(opt.run_dir, model, *optimizer, state, c.keep_checkpoints);
  };
  double comm_ms_total = 0;
  // The device's matmul ceiling, for the MFU of the step lines (measured once, by the rank
  // that prints).
  const double ceiling_gflops = lead && opt.print_steps ? measure_matmul_ceiling_gflops(device) : 0;
  if (ceiling_gflops > 0)
    fmt::print("MFU is matmul FLOP/s over this device's measured ceiling: {:.0f} GFLOP/s (f32 1024^3 on {})\n",
               ceiling_gflops, device.str());
  const double comm_seconds_at_start = comm.communication_seconds();
  const auto t_run = std::chrono::steady_clock::now();
  // Anomaly mode: the first NaN/Inf made in forward or backward stops the run, naming the op
  // and the module (an error like any other: the last checkpoint stays as it was).
  std::unique_ptr<autograd::DetectAnomaly> anomaly;
  if (c.detect_anomaly || autograd::anomaly_mode_from_environment())
    anomaly = std::make_unique<autograd::DetectAnomaly>(model.named_parameters());

  // cuda_graph: a few eager steps first (cuBLAS picks its algorithms, kernels load, the
  // allocator's cache fills), then the step is recorded once and replayed.
  constexpr int64_t kEagerStepsBeforeRecording = 2;
  std::unique_ptr<StepGraph> step_graph;
  if (c.cuda_graph) {
    if (comm.name() != "single")
      fail("train", "cuda_graph records one process's step; it does not combine with data-parallel training "
                    "(dist_backend " + comm.name() + ")");
    if (anomaly) fail("train", "cuda_graph and anomaly mode (MMGRAD_DETECT_ANOMALY) do not go together");
    step_graph = std::make_unique<StepGraph>(model, weights);
  }

  int64_t step = first_step;
  for (; step < c.steps; ++step) {
    const auto t0 = std::chrono::steady_clock::now();
    const uint64_t flops_at_start = matmul_flops();
    const double lr = warmup_cosine_lr(step, c.warmup_steps, c.steps, c.lr, c.min_lr);
    optimizer->zero_grad();
    double loss = 0, data_ms = 0;
    std::vector<std::pair<std::string, double>> parts;
    const bool replay = step_graph && step - first_step >= kEagerStepsBeforeRecording;
    const bool recording = replay && !step_graph->recorded();
    std::vector<nn::LossInputs> micro_inputs;
    for (int64_t a = 0; a < c.accum_steps; ++a) {
      const auto td = std::chrono::steady_clock::now();
      Batch b = batches(state.data_position + comm.rank() * shard, shard);
      state.data_position += micro;
      b.images = b.images.to(device);  // no-ops on the CPU
      b.ids = b.ids.to(device);
      micro_inputs.push_back(nn::make_loss_inputs(b.images, b.ids, weights, gen, b.groups, comm.rank() * shard));
      data_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - td).count();
    }
    uint64_t replayed_flops = 0;
    std::optional<StepLosses> replayed;
    if (replay) {
      try {
        replayed = step_graph->run(micro_inputs);
      } catch (const Error& e) {
        // Recording can meet something CUDA will not put in a graph; nothing of the step ran
        // yet, so it runs eagerly below, on the same inputs, and so do the steps after it.
        if (!recording) throw;
        optimizer->zero_grad();  // StepGraph already dropped them; the eager step starts clean either way
        progress.clear();
        if (lead) fmt::print(stderr, "warning: {}; training continues without a CUDA graph\n", e.what());
        step_graph.reset();
      }
    }
    if (replayed) {
      loss = item(replayed->total);  // waits for the replay; a device-side error in it is raised here
      for (const auto& [name, t] : replayed->parts) parts.emplace_back(name, item(t));
      if (recording && lead) {
        progress.clear();
        fmt::print("cuda_graph: step {} recorded as a CUDA graph of {} nodes; later steps replay it\n", step + 1,
                   step_graph->nodes());
      }
      if (!recording) replayed_flops = step_graph->matmul_flops();
    } else {
      for (size_t a = 0; a < micro_inputs.size(); ++a) {
        nn::Losses l = nn::compute_losses(model, micro_inputs[a], weights, ranks > 1 ? &comm : nullptr);
        Tensor scaled = c.accum_steps > 1 ? mul(l.total, 1.0 / static_cast<double>(c.accum_steps)) : l.total;
        if (reducer && a + 1 == micro_inputs.size()) {
          // The last micro-batch: gradient buckets start their all-reduce as backward completes them.
          dist::GradReducer::ReadyScope overlap(*reducer);
          scaled.backward();
        } else {
          scaled.backward();
        }
        loss += item(l.total) / static_cast<double>(c.accum_steps);
        if (parts.empty())
          for (const auto& [name, t] : l.parts) parts.emplace_back(name, 0.0);
        for (size_t i = 0; i < l.parts.size(); ++i)
          parts[i].second += item(l.parts[i].second) / static_cast<double>(c.accum_steps);
      }
    }
    double comm_ms = 0;
    bool stop_requested = StopSignals::requested();
    if (reducer) {
      comm_ms = reducer->finish();
      comm_ms_total += comm_ms;
      // The logged loss is the mean over the ranks (that of the whole batch); a stop signal
      // seen by any rank stops all of them after this step.
      std::vector<double> values{loss, stop_requested ? 1.0 : 0.0};
      for (const auto& [name, v] : parts) values.push_back(v);
      Tensor t = from_data(values, {static_cast<int64_t>(values.size())});
      comm.all_reduce_sum(t);
      values = to_vector<double>(t);
      loss = values[0] / ranks;
      stop_requested = values[1] > 0;
      for (size_t i = 0; i < parts.size(); ++i) parts[i].second = values[i + 2] / ranks;
    }
    const double grad_norm = clip_grad_norm(params, c.grad_clip > 0 ? c.grad_clip : INFINITY);
    const bool finite = std::isfinite(loss) && std::isfinite(grad_norm);
    if (finite) {
      optimizer->step(lr);
      NoGradGuard no_grad;
      if (item(model.logit_scale) > max_logit_scale) fill_(model.logit_scale, max_logit_scale);
      bad_in_a_row = 0;
    } else {
      ++summary.skipped_steps;
      ++bad_in_a_row;
      progress.clear();
      if (lead) fmt::print(stderr, "warning: step {}: non-finite {} ({}); the update is skipped\n", step + 1,
                 std::isfinite(loss) ? "gradient norm" : "loss", std::isfinite(loss) ? grad_norm : loss);
    }
    const double ms = std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    const double samples_per_s = static_cast<double>(c.batch_size) / (ms / 1000.0);
    const uint64_t step_flops = matmul_flops() - flops_at_start + replayed_flops;  // this rank's
    const double gflops = static_cast<double>(step_flops) / (ms * 1e6);
    const double peak_mib = static_cast<double>(peak_tensor_memory(device)) / (1 << 20);

    std::string line = fmt::format("{{\"step\": {}, \"loss\": {}", step + 1, loss);
    for (const auto& [name, v] : parts) line += fmt::format(", {}: {}", json::quote(name), v);
    line += fmt::format(", \"lr\": {}, \"grad_norm\": {}, \"logit_scale\": {}, \"ms\": {:.2f}, \"data_ms\": {:.2f}, "
                        "\"samples_per_s\": {:.1f}, \"skipped\": {}",
                        lr, std::isfinite(grad_norm) ? grad_norm : -1.0, item(model.logit_scale), ms, data_ms,
                        samples_per_s, finite ? "false" : "true");
    line += fmt::format(", \"gflops\": {:.1f}, \"peak_mem_mib\": {:.1f}", gflops, peak_mib);
    if (ceiling_gflops > 0) line += fmt::format(", \"mfu\": {:.4f}", gflops / ceiling_gflops);
    if (ranks > 1) line += fmt::format(", \"ranks\": {}, \"comm_ms\": {:.2f}", ranks, comm_ms);
    line += "}\n";
    if (!std::isfinite(loss)) line = fmt::format("{{\"step\": {}, \"skipped\": true}}\n", step + 1);  // NaN is not JSON
    if (lead) {
      metrics << line << std::flush;
      if (finite) {
        events->scalar("loss/total", step + 1, loss);
        for (const auto& [name, v] : parts) events->scalar("loss/" + name, step + 1, v);
        events->scalar("train/lr", step + 1, lr);
        events->scalar("train/grad_norm", step + 1, grad_norm);
        events->scalar("speed/samples_per_s", step + 1, samples_per_s);
        if (ceiling_gflops > 0) events->scalar("speed/mfu", step + 1, gflops / ceiling_gflops);
        events->scalar("memory/peak_mib", step + 1, peak_mib);
        events->flush();
      }
    }
    if (bad_in_a_row >= c.max_bad_steps)
      fail("train", fmt::format("stopped: {} steps in a row had a non-finite loss or gradient (step {}); the last "
                                "checkpoint{} is intact. Lower lr or check the data.",
                                bad_in_a_row, step + 1, summary.checkpoint.empty() ? " (none yet)" : " " + summary.checkpoint));

    if (finite) {
      window.add(loss, parts, ms);
      window.flops += step_flops;
    }
    const bool last = step + 1 == c.steps;
    if (lead && opt.print_steps && (window.steps > 0) && ((step + 1) % c.log_every == 0 || last)) {
      std::string part_text;
      for (const auto& [name, v] : window.mean_parts()) part_text += fmt::format(" {} {:.4f}", name, v);
      progress.clear();
      const double mean_ms = window.ms / static_cast<double>(window.steps);
      const double window_gflops = static_cast<double>(window.flops) / (window.ms * 1e6);
      fmt::print("step {:>{}}/{}  loss {:.4f} ({} )  lr {:.2e}  grad norm {:.3f}  {:.0f} ms  {:.0f} samples/s  "
                 "MFU {:.0f}%  mem {:.0f} MiB  ETA {}\n",
                 step + 1, std::to_string(c.steps).size(), c.steps, window.loss / static_cast<double>(window.steps),
                 part_text.substr(1), lr, grad_norm, mean_ms, static_cast<double>(c.batch_size) / (mean_ms / 1000.0),
                 ceiling_gflops > 0 ? 100 * window_gflops / ceiling_gflops : 0.0, peak_mib,
                 format_duration(progress.eta_seconds(step + 1)));
      std::fflush(stdout);
      summary.final_loss = window.loss / static_cast<double>(window.steps);
      summary.final_parts = window.mean_parts();
      window = Window{};
    }
    progress.update(step + 1, fmt::format("loss {:.3f}", loss));

    if ((step + 1) % c.checkpoint_every == 0 || last) save(step + 1);
    const bool stop_here = opt.stop_after > 0 && step + 1 >= opt.stop_after;
    if (!last && (stop_requested || stop_here)) {
      progress.clear();
      if ((step + 1) % c.checkpoint_every != 0) save(step + 1);
      if (lead) fmt::print(stderr, "{} after step {}; checkpoint {} (continue with --resume)\n",
                 stop_here ? "stopped" : "interrupted", step + 1, summary.checkpoint);
      summary.interrupted = true;
      ++step;
      break;
    }
  }
  progress.finish();
  summary.last_step = step;
  summary.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t_run).count();
  summary.samples_per_second =
      static_cast<double>((step - first_step) * c.batch_size) / std::max(summary.seconds, 1e-9);
  summary.comm_ms_per_step = comm_ms_total / static_cast<double>(std::max<int64_t>(step - first_step, 1));
  summary.comm_busy_ms_per_step = 1000.0 * (comm.communication_seconds() - comm_seconds_at_start) /
                                  static_cast<double>(std::max<int64_t>(step - first_step, 1));
  return summary;
}

}  // namespace mmgrad::train
