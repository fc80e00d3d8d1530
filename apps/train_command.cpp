#include "apps/train_command.h"

#include <chrono>
#include <ctime>
#include <filesystem>
#include <fstream>
#include <memory>
#include <optional>
#include <sstream>
#include <thread>

#include <fmt/format.h>

#include "apps/options.h"
#include "autograd/autocast.h"
#include "backends/cpu/gemm.h"
#include "core/atomic_file.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/parallel.h"
#include "core/rng.h"
#include "apps/real_data.h"
#include "apps/run_report.h"
#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/bf16_operand.h"
#include "backends/cuda/cuda.h"
#endif
#include "data/bpe.h"
#include "dist/communicator.h"
#include "data/loader.h"
#include "data/sampler.h"
#include "data/shapes_batches.h"
#include "eval/loaded_run.h"
#include "eval/shapes_eval.h"
#include "train/checkpoint.h"
#include "train/run_config.h"
#include "train/safetensors.h"
#include "train/trainer.h"

namespace mmgrad::apps {

const char* const kTrainHelp = R"(usage: mmgrad train [options]

Trains a CLIP-style model (contrastive + image-text matching + captioning) on the built-in
shapes dataset, then evaluates it on the held-out split (attribute combinations never seen
in training); or, with --set dataset=TABLE (an image-caption table: tab-separated,
filepath and title columns) or --preset mnist|emoji (after `mmgrad data fetch`), on real
images, evaluated on eval_dataset (a table: retrieval; a folder of class folders:
zero-shot). Everything goes to the run folder: config.json, the tokenizer,
metrics.jsonl (one JSON line per step), checkpoint.safetensors, eval.json and report.html
(curves, figures, retrieval examples, captions and attention maps; open it in a browser).

options:
  --preset NAME        shapes-small (default), mnist, emoji, clip-tiny, clip-b32
  --config FILE        a JSON object of keys to set (applied after the preset)
  --set KEY=VALUE      set one key (repeatable; applied last), e.g. --set steps=300
  --run-dir DIR        the run folder (default runs/<preset>-<date>-<time>)
  --resume CKPT|DIR    continue a run from its checkpoint (its configuration is used;
                       --set may change e.g. steps); the run folder defaults to the
                       checkpoint's folder. Given the run folder, the newest of its last
                       keep_checkpoints checkpoints that passes its checksum is used
  --eval-samples N     held-out samples to evaluate after training (default: eval_size)
  --stop-after N       stop after step N with a checkpoint, as Ctrl-C would (the schedule
                       still runs to steps; --resume continues exactly)

data parallel: `mpirun -np N mmgrad train ...` trains on N processes (one machine or many;
every rank must see the run folder to resume). Each rank takes batch_size / N samples of
every step; gradients are averaged over the ranks while backward runs; the contrastive and
ITM losses see the whole batch. Rank 0 prints, evaluates and writes the checkpoints.
Keys: dist_backend (auto|single|mpi|nccl), bucket_kib, dist_timeout (seconds).

GPU: --set device=cuda trains on cuda:0 (evaluation on the CPU). matmul_precision f32|tf32|bf16
chooses how the GEMMs run (bf16: mixed precision, GEMM operands rounded to bf16 once and kept
as bf16 for backward, f32 accumulation; everything else f32); cuda_graph=true records forward and backward as a CUDA graph after
two eager steps and replays it (one launch per step; one process, fixed batch shapes).

keys (--set): )";

const char* const kEvalHelp = R"(usage: mmgrad eval --checkpoint FILE [options]

Evaluates a checkpoint written by `mmgrad train` (its configuration is read from the
checkpoint; the tokenizer from the copy saved beside it) and prints the same report as the
end of training.

options:
  --checkpoint FILE    the checkpoint (required)
  --split NAME         held-out (default) or train
  --samples N          samples evaluated (default: the run's eval_size)
  --json FILE          also write the figures as JSON
  --data PATH          evaluate a caption table (retrieval) or a folder of class folders
                       (zero-shot) instead; runs trained on a table default to their
                       eval_dataset
  --prompts T          zero-shot templates, '|'-separated, {} = the class name
                       (default: the run's prompts key, else CLIP-style templates)
  --report FILE        where to write the HTML report (default: report.html beside the
                       checkpoint): curves, figures, retrieval examples, captions and
                       attention maps

examples:
  mmgrad eval --checkpoint runs/shapes-small/checkpoint.safetensors
  mmgrad eval --checkpoint runs/mnist/checkpoint.safetensors --data datasets/mnist/test \
              --prompts 'the number {}|a handwritten {}'
  mmgrad eval --checkpoint runs/emoji/checkpoint.safetensors --data datasets/emoji/test.tsv
)";

namespace {

// fmt::print on rank 0 only.
template <typename... Args>
void print_if(bool lead, fmt::format_string<Args...> format, Args&&... args) {
  if (lead) fmt::print(format, std::forward<Args>(args)...);
}

// Ranks on one machine share its cores: each takes cores / ranks-on-this-machine threads
// (unless MMGRAD_NUM_THREADS says otherwise), so that they do not over-subscribe.
void use_cores_per_rank() {
  if (std::getenv("MMGRAD_NUM_THREADS")) return;
  const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_SIZE");
  const int local_ranks = local ? std::max(1, std::atoi(local)) : 1;
  const int cores = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  set_num_threads(std::max(1, cores / local_ranks));
}

std::string timestamp() {
  const std::time_t now = std::time(nullptr);
  std::tm tm{};
  localtime_r(&now, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y%m%d-%H%M%S", &tm);
  return buf;
}

std::string read_text_file(const std::string& path, const std::string& what) {
  std::ifstream in(path);
  if (!in) fail("mmgrad", "cannot read " + what + " '" + path + "' (" + std::strerror(errno) + ")");
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

std::string help_with_keys() {
  std::string keys, line;
  for (const auto& k : train::config_keys()) {
    if (line.size() + k.size() > 70) keys += line + "\n  ", line.clear();
    line += k + " ";
  }
  const train::RunConfig d = train::run_preset("shapes-small");
  return std::string(kTrainHelp) + "\n  " + keys + line + "\n\nthe shapes-small preset:\n" + train::to_json(d) +
         "\nexamples:\n  mmgrad train\n  mmgrad train --set steps=300 --set lr=5e-4 --run-dir runs/short\n"
         "  mmgrad train --resume runs/short/checkpoint.safetensors --set steps=600\n"
         "  mmgrad data fetch mnist && mmgrad train --preset mnist\n"
         "  mmgrad train --set dataset=my/train.tsv --set eval_dataset=my/test.tsv --set image_size=64 --set patch_size=8\n";
}

// The tokenizer and the vocabulary-dependent model keys of a shapes run.
data::BpeTokenizer shapes_tokenizer(train::RunConfig& c) {
  const data::ShapesDataset train_split(data::Split::Train, c.train_size, c.seed, c.model.image_size);
  data::BpeTokenizer tok = data::train_shapes_tokenizer(train_split, c.tokenizer_vocab);
  c.model.vocab_size = tok.vocab_size();
  c.model.eot_token_id = tok.end_token();
  std::vector<std::string> captions;
  for (int64_t i = 0; i < std::min<int64_t>(5000, c.train_size); ++i) captions.push_back(train_split.get(i, false).caption);
  warn_truncated_captions(tok, captions, c.model.context_length);
  return tok;
}

void print_bad_samples(const std::vector<std::pair<int64_t, std::vector<std::string>>>& reports) {
  for (const auto& [epoch, names] : reports) {
    fmt::print(stderr, "warning: epoch {}: {} unreadable samples skipped (bad_samples=skip); the first:\n", epoch + 1,
               names.size());
    for (size_t i = 0; i < std::min<size_t>(names.size(), 5); ++i) fmt::print(stderr, "  {}\n", names[i]);
  }
}

EvalOutput print_eval(const eval::ShapesEval& e, const std::string& json_path) {
  const EvalOutput out{eval::format_eval(e), eval::eval_json(e)};
  fmt::print("{}", out.text);
  if (!json_path.empty()) {
    write_file_atomically(json_path, "eval", [&](std::ostream& out) { out << eval::eval_json(e) << "\n"; });
    fmt::print("figures written to {}\n", json_path);
  }
  return out;
}

// report.html after an evaluation (a failure to write it is a warning: the figures stand).
void report(const std::string& path, const std::string& run_dir, const nn::ClipModel& model, const data::Tokenizer& tok,
            const train::RunConfig& c, const EvalOutput& e, const std::string& data_path) {
  try {
    const int64_t images = write_run_report(path, run_dir, model, tok, c, e.json, e.text, data_path);
    fmt::print("report: {} ({} images)\n", path, images);
  } catch (const Error& err) {
    fmt::print(stderr, "warning: no report.html: {}\n", err.what());
  }
}

}  // namespace

int train_command(int argc, char** argv, int first) {
  const Options o = parse_options(argc, argv, first, "mmgrad train",
                                  {"preset", "config", "run-dir", "resume", "eval-samples", "stop-after"}, {"set"});
  if (o.help) {
    fmt::print("{}", help_with_keys());
    return 0;
  }
  namespace fs = std::filesystem;
  train::RunConfig c;
  std::string run_dir = o.get("run-dir");
  std::string resume = o.get("resume");
  if (!resume.empty() && std::filesystem::is_directory(resume)) {
    // A run folder: its newest checkpoint that reads back intact (corrupt ones are skipped).
    if (run_dir.empty()) run_dir = resume;
    resume = train::newest_good_checkpoint(resume, [](const std::string& why) {
      fmt::print(stderr, "warning: skipping a checkpoint: {}\n", why);
    });
    fmt::print("resuming from {}\n", resume);
  }
  if (!resume.empty()) {
    if (o.has("preset") || o.has("config"))
      fail("mmgrad train", "--resume uses the checkpoint's configuration; change keys with --set instead of --preset/--config");
    train::apply_json(c, train::read_checkpoint_config(resume));
    if (run_dir.empty()) run_dir = fs::path(resume).parent_path().string();
  } else {
    c = train::run_preset(o.get("preset", "shapes-small"));
    if (o.has("config")) train::apply_json(c, read_text_file(o.get("config"), "config file"));
  }
  if (o.repeated.count("set"))
    for (const auto& a : o.repeated.at("set")) train::set_assignment(c, a);
  train::validate(c);
  // Data-parallel when mpirun started several processes (or a backend is named).
  dist::Communicator& comm = dist::world(c.dist_backend);
  comm.set_timeout(c.dist_timeout);
  const bool lead = comm.rank() == 0;
  if (comm.size() > 1) use_cores_per_rank();
  if (run_dir.empty()) run_dir = "runs/" + c.model.name + "-" + timestamp();
  run_dir = dist::broadcast_string(comm, run_dir);  // rank 0's clock names the folder
  if (lead) fs::create_directories(run_dir);

  // The tokenizer is part of the run: a resumed run must use the saved one.
  const bool shapes = c.dataset == "shapes";
  std::optional<data::CaptionTable> table;
  if (!shapes) table = data::read_caption_table(c.dataset, table_options(c));
  std::unique_ptr<data::Tokenizer> tok;
  if (!resume.empty()) {
    tok = load_run_tokenizer(c, run_dir);
  } else if (shapes) {
    // Every rank trains the same tokenizer (it is deterministic); rank 0 saves it.
    auto bpe = std::make_unique<data::BpeTokenizer>(shapes_tokenizer(c));
    if (lead) bpe->save(run_dir + "/tokenizer.bpe");
    tok = std::move(bpe);
  } else {
    std::vector<std::string> captions;
    for (const auto& r : table->rows) captions.push_back(r.caption);
    tok = make_tokenizer(c, run_dir, captions, lead);
  }
  train::validate(c);
  if (lead)
    write_file_atomically(run_dir + "/config.json", "config", [&](std::ostream& out) { out << train::to_json(c); });
  // Everything below prints on rank 0 only.

  Generator init_gen(c.seed);
  nn::ClipModel model(c.model, init_gen);
  const Device device = Device::parse(c.device);
  // Mixed precision: with bf16 matmuls the GEMMs run on operands rounded to bf16 once, and
  // the graph keeps those (autograd/autocast.h), for the whole training run on this thread.
  std::optional<AutocastBf16> autocast;
#ifdef MMGRAD_HAVE_CUDA
  if (device.type == DeviceType::CUDA) {
    if (!cuda::available()) fail("train", "device=cuda, but cuda:0 is not available: " + cuda::unavailable_reason());
    cuda::set_matmul_precision(cuda::parse_matmul_precision(c.matmul_precision));
    if (c.matmul_precision == "bf16" && cuda::bf16_gemm_operands()) autocast.emplace(DeviceType::CUDA);
  }
#endif
  model.to(device);
  if (device.type != DeviceType::CPU)
    print_if(lead, "training on {} (matmul precision {}{}); evaluation on the CPU\n", device.str(), c.matmul_precision,
             autocast ? ", bf16 autocast" : "");  // before the optimizer exists: its state is made where the parameters are
  if (comm.size() > 1)
    print_if(lead, "data parallel: {} ranks ({}), {} samples per rank per step, gradient buckets of {} KiB\n", comm.size(),
          comm.name(), c.batch_size / comm.size(), c.bucket_kib);
  print_if(lead, "{}\nf32 GEMM: {} ({}); threads: {}\n", blas_summary(), cpu::float_gemm_provider(),
             cpu::builtin_gemm_isa(), num_threads());
  print_if(lead, "model {}: {} parameters (vision {}x{}, text {}x{}, fusion {} layers, caption {} layers), vocabulary {}\n",
             c.model.name, model.num_parameters(), c.model.vision_layers, c.model.vision_width, c.model.text_layers,
             c.model.text_width, c.model.fusion_layers, c.model.caption_layers, c.model.vocab_size);
  print_if(lead, "objectives: {} x{} + itm x{} + caption x{}; {} steps of {} samples, lr {} (warmup {}, cosine)\n",
             c.model.contrastive, c.w_contrastive, c.w_itm, c.w_caption, c.steps, c.batch_size, c.lr, c.warmup_steps);
  print_if(lead, "run folder: {}\n", run_dir);

  const data::ShapesDataset train_split(data::Split::Train, c.train_size, c.seed, c.model.image_size);
  data::EpochSampler sampler(c.train_size, c.seed);
  std::unique_ptr<data::ImageTextLoader> loader;
  if (table) {
    data::LoaderOptions lo;
    lo.workers = c.workers;
    lo.prefetch = c.prefetch;
    if (comm.size() > 1) lo.stride = c.batch_size / c.accum_steps;  // this rank's shard of each micro-batch
    lo.bad_samples = data::parse_bad_sample_policy(c.bad_samples);
    lo.decode = decode_options(c);
    loader = std::make_unique<data::ImageTextLoader>(*table, preprocess_from_config(c), *tok, c.model.context_length,
                                                     c.seed, lo);
    print_if(lead, "data: {} ({} rows), {} loader threads\n", c.dataset, loader->size(), c.workers);
  }
  const train::BatchSource batches = [&](int64_t first_pos, int64_t count) {
    if (loader) {
      data::LoadedBatch b = loader->batch(first_pos, count);
      print_bad_samples(loader->take_epoch_reports());
      return train::Batch{b.images, b.ids, b.groups};
    }
    std::vector<int64_t> idx(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) idx[static_cast<size_t>(i)] = sampler.index(first_pos + i);
    data::ImageTextBatch b = data::shapes_batch(train_split, *tok, c.model.context_length, idx);
    return train::Batch{b.images, b.ids, b.groups};
  };
  train::TrainOptions topt;
  topt.run_dir = run_dir;
  topt.resume = resume;
  topt.comm = &comm;
  if (o.has("stop-after")) topt.stop_after = o.get_int("stop-after", 0);
  // A run whose training finished but whose evaluation did not (killed, or asked again):
  // resuming it evaluates the final checkpoint instead of failing.
  const int64_t resumed_step =
      resume.empty() ? 0 : std::stoll(train::load_safetensors_metadata(resume).at("step"));
  train::TrainSummary s;
  if (resumed_step >= c.steps) {
    train::load_model_weights(resume, model);
    s.interrupted = false;
    print_if(lead, "training is complete ({} of {} steps in {}); evaluating it (raise steps to train further)\n",
             resumed_step, c.steps, resume);
  } else {
    s = train::train_model(model, c, batches, topt);
    print_if(lead, "trained steps {}-{} in {:.1f} s ({:.0f} samples/s); checkpoint {}\n", s.first_step + 1, s.last_step,
             s.seconds, s.samples_per_second, s.checkpoint);
    if (comm.size() > 1) {
      const double step_ms = 1000.0 * s.seconds / static_cast<double>(std::max<int64_t>(s.last_step - s.first_step, 1));
      print_if(lead, "communication: {:.1f} ms per step in collectives ({:.1f}% of the step), {:.1f} ms of it not hidden "
                     "behind backward ({:.1f}%)\n",
               s.comm_busy_ms_per_step, 100.0 * s.comm_busy_ms_per_step / step_ms, s.comm_ms_per_step,
               100.0 * s.comm_ms_per_step / step_ms);
    }
    if (s.skipped_steps) print_if(lead, "{} steps were skipped for non-finite values\n", s.skipped_steps);
  }
  if (loader) print_bad_samples(loader->take_epoch_reports(true));
  if (s.interrupted) return 130;
  if (!lead) return 0;  // rank 0 evaluates
  model.to(Device::cpu());  // evaluation runs on the CPU

  const auto t0 = std::chrono::steady_clock::now();
  EvalOutput evaluated;
  if (shapes) {
    const eval::ShapesEval e = eval::evaluate_shapes(model, *tok, data::Split::HeldOut,
                                                     o.get_int("eval-samples", c.eval_size), c.seed);
    evaluated = print_eval(e, run_dir + "/eval.json");
  } else if (!c.eval_dataset.empty()) {
    evaluated = evaluate_data(model, *tok, c, c.eval_dataset, o.get_int("eval-samples", c.eval_size), run_dir + "/eval.json");
  } else {
    fmt::print("no eval_dataset set: nothing evaluated\n");
  }
  fmt::print("evaluation took {:.1f} s\n",
             std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count());
  if (shapes || !c.eval_dataset.empty())
    report(run_dir + "/report.html", run_dir, model, *tok, c, evaluated, shapes ? "" : c.eval_dataset);
  return 0;
}

int eval_command(int argc, char** argv, int first) {
  const Options o = parse_options(argc, argv, first, "mmgrad eval",
                                  {"checkpoint", "split", "samples", "json", "data", "prompts", "report"});
  if (o.help) {
    fmt::print("{}", kEvalHelp);
    return 0;
  }
  if (!o.has("checkpoint")) fail("mmgrad eval", "--checkpoint FILE is required (see mmgrad eval --help)");
  const std::string ckpt = o.get("checkpoint");
  const std::string split_name = o.get("split", "held-out");
  if (split_name != "held-out" && split_name != "train")
    fail("mmgrad eval", "--split must be held-out or train, got '" + split_name + "'");
  eval::LoadedRun run = eval::load_run(ckpt);
  train::RunConfig& c = run.config;
  const data::Tokenizer* tok = run.tokenizer.get();
  const nn::ClipModel& model = *run.model;
  fmt::print("checkpoint {} (step {}), model {}: {} parameters\n", ckpt, run.state.step, c.model.name,
             model.num_parameters());
  const int64_t samples = o.get_int("samples", c.eval_size);
  if (samples < 2) fail("mmgrad eval", "--samples must be at least 2");
  if (o.has("prompts")) c.prompts = o.get("prompts");
  const std::string data_path = o.get("data", c.dataset == "shapes" ? "" : c.eval_dataset);
  const std::string run_dir = std::filesystem::path(ckpt).parent_path().string();
  const std::string report_path = o.get("report", (std::filesystem::path(run_dir) / "report.html").string());
  if (!data_path.empty()) {
    const EvalOutput e = evaluate_data(model, *tok, c, data_path, samples, o.get("json"));
    report(report_path, run_dir, model, *tok, c, e, data_path);
    return 0;
  }
  if (c.dataset != "shapes") fail("mmgrad eval", "the run trained on a table and has no eval_dataset: give --data PATH");
  const eval::ShapesEval e = eval::evaluate_shapes(
      model, *tok, split_name == "train" ? data::Split::Train : data::Split::HeldOut, samples, c.seed);
  report(report_path, run_dir, model, *tok, c, print_eval(e, o.get("json")), "");
  return 0;
}

}  // namespace mmgrad::apps
