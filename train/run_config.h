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
  bool detect_anomaly = false;      // stop at the first NaN/Inf made, naming op and module (slow)
  bool recompute = true;            // fused ops recompute cheap intermediates in backward instead
                                    // of keeping them (set_recompute_in_backward): less memory,
                                    // a few percent more compute

  // Objectives, weighted (models/objectives.h).
  double w_contrastive = 1.0, w_itm = 1.0, w_caption = 1.0;
  bool hard_negatives = true;
  double negative_scale = 1;        // see nn::ObjectiveWeights: 1 = softmax of the cosines (the
                                    // MODELS.md wording); 0 = ALBEF's learned logit scale

  // Data: "shapes" = the built-in dataset (data/shapes.h), or the path of an image-caption
  // table (data/caption_table.h) read by the background loader (data/loader.h).
  std::string dataset = "shapes";
  std::string eval_dataset;         // after training: a caption table (retrieval) or a class folder (zero-shot)
  std::string table_separator = "tab";  // "tab" or "comma"
  std::string image_column = "filepath", caption_column = "title";
  // "train": a byte-level BPE trained on the training captions (tokenizer_vocab tokens); or
  // the path of CLIP's merges file (bpe_simple_vocab_16e6.txt) or a tokenizer.json.
  std::string tokenizer = "train";
  // Image preprocessing for tables (data/image_transform.h).
  std::string interpolation = "bicubic";  // or "bilinear"
  std::string normalize = "clip";         // "clip" (CLIP's mean/std), "half" (0.5/0.5), "none", or
                                          // "custom": image_mean / image_std ("r,g,b" each)
  std::string image_mean, image_std;
  double crop_scale_min = 0.9;            // random resized crop: smallest area fraction (1 = no crop)
  double jitter = 0;                      // colour jitter: brightness, contrast and saturation
  bool hflip = false;                     // off: mirroring breaks "left of" captions
  std::string background = "white";       // what transparent pixels become: "white" or "black"
  int64_t workers = 2;                    // loader threads
  int64_t prefetch = 4;                   // batches prepared ahead
  std::string bad_samples = "fail";       // "fail" on the first unreadable image, or "skip" and count
  // Zero-shot prompt templates, '|'-separated, "{}" marks the class name ("" = the defaults).
  std::string prompts;
  int64_t train_size = 1000000;     // procedural, so it can be large
  int64_t eval_size = 1000;         // held-out samples evaluated
  int64_t tokenizer_vocab = 320;    // bytes + merges + special tokens
  uint64_t seed = 0;
  // Where the model trains: "cpu" or "cuda" (cuda:0; needs a build with CUDA and a GPU).
  // Evaluation after training runs on the CPU.
  std::string device = "cpu";
  // How f32 matmuls run on CUDA: "f32", "tf32" or "bf16" (mixed precision: bf16 autocast,
  // autograd/autocast.h: GEMM operands rounded to bf16 once and kept as bf16 for backward,
  // bf16 tensor-core GEMMs with f32 accumulation; activations, master weights and optimizer
  // state stay f32).
  std::string matmul_precision = "f32";
  // Record the step's forward and backward as a CUDA graph after two eager steps and replay it
  // (train/step_graph.h): one launch instead of about a thousand for a small model. Needs
  // device=cuda and one process; the batch shapes must not change.
  bool cuda_graph = false;

  // Data-parallel training (`mpirun -np N mmgrad train`, dist/): which communicator
  // ("auto": MPI when started by mpirun with several processes; "single", "mpi", "nccl"),
  // the gradient bucket size, and how long a collective may wait for the other ranks
  // before the job is ended with an error (seconds; 0 waits forever).
  std::string dist_backend = "auto";
  int64_t bucket_kib = 1024;
  double dist_timeout = 600;

  // Logging and checkpoints.
  int64_t log_every = 10;
  int64_t checkpoint_every = 200;   // and always at the end
  int64_t keep_checkpoints = 3;     // step files kept in the run folder (the newest good one resumes)
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
