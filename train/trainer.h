// The training loop: batches in, optimizer steps out, with a step log, a progress bar,
// JSON-lines metrics and checkpoints in the run folder.
//
// Each step: warmup-cosine learning rate; accum_steps micro-batches, each forward + loss +
// backward (gradients add up, the loss is divided by accum_steps); global grad-norm clip;
// one optimizer update; logit_scale clamped to ln(100) (MODELS.md). A step whose loss or
// gradient norm is not finite is skipped with a warning (its data is still consumed, so
// the run stays reproducible); max_bad_steps of them in a row stop the run with the last
// checkpoint intact. Ctrl-C (SIGINT) or SIGTERM finishes the current step, writes a
// checkpoint and returns.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <utility>
#include <vector>

#include "core/tensor.h"
#include "models/clip.h"
#include "train/run_config.h"

namespace mmgrad::dist {
class Communicator;
}

namespace mmgrad::train {

struct Batch {
  Tensor images;                // [B, 3, S, S]
  Tensor ids;                   // [B, T]
  std::vector<int64_t> groups;  // optional: samples of a group are not each other's ITM negatives
};
// The `count` samples starting at global sample position `first` (positions run on over
// epochs; the source maps them to dataset indices).
using BatchSource = std::function<Batch(int64_t first, int64_t count)>;

struct TrainOptions {
  std::string run_dir;     // checkpoint.safetensors and metrics.jsonl go here (must exist)
  std::string resume;      // a checkpoint to continue from; "" starts fresh
  bool print_steps = true;  // the step lines on stdout
  int64_t stop_after = 0;   // > 0: stop after this step with a checkpoint, as a signal would
  // Data-parallel training over the ranks of comm (null or one rank: this process alone).
  // Each rank takes its shard of every global batch (batch_size / ranks samples); gradients
  // are averaged in buckets that start during backward; parameters and optimizer state are
  // broadcast from rank 0 at the start (fresh or resumed), and the configuration and
  // resume point are checked to agree. Rank 0 alone prints, writes metrics and checkpoints;
  // every rank reads the checkpoint it resumes from.
  dist::Communicator* comm = nullptr;
};

struct TrainSummary {
  int64_t first_step = 0, last_step = 0;  // steps run: [first_step, last_step)
  double seconds = 0;                     // wall time of those steps
  double samples_per_second = 0;
  double final_loss = 0;                  // mean total loss of the last log_every steps
  std::vector<std::pair<std::string, double>> final_parts;
  int64_t skipped_steps = 0;              // non-finite steps skipped
  bool interrupted = false;               // stopped early by a signal or stop_after (checkpoint written)
  std::string checkpoint;                 // the last checkpoint written
  double comm_ms_per_step = 0;            // waiting for the gradient all-reduce, per step (data parallel)
  double comm_busy_ms_per_step = 0;       // in collectives per step, overlapped with compute or not
};

// The run folder's file names.
std::string checkpoint_path(const std::string& run_dir);
std::string metrics_path(const std::string& run_dir);

TrainSummary train_model(nn::ClipModel& model, const RunConfig& config, const BatchSource& batches,
                         const TrainOptions& options);

}  // namespace mmgrad::train
