// The `mmgrad` command line.
#include <cstring>
#include <map>
#include <string>

#include <fmt/format.h>

#include "apps/example_mlp.h"
#include "core/blas_info.h"
#include "core/error.h"
#include "core/parallel.h"
#ifdef MMGRAD_HAVE_CUDA_RUNTIME
#include "backends/cuda/device_query.h"
#endif

namespace {

const char* kUsage = R"(usage: mmgrad <command> [options]

commands:
  info                 version, BLAS library and kernel, threads
  mlp [options]        train an MLP with autograd on a synthetic two-spirals task
      --steps N        optimisation steps (default 600)
      --hidden N       hidden width (default 64)
      --lr X           learning rate (default 0.3)
      --seed N         random seed (default 0)

example:
  mmgrad mlp --steps 300 --hidden 32
)";

// Parses "--name value" pairs against the allowed names; unknown names are errors.
std::map<std::string, std::string> parse_options(int argc, char** argv, int first,
                                                 const std::map<std::string, std::string>& allowed) {
  std::map<std::string, std::string> out;
  for (int i = first; i < argc; ++i) {
    std::string a = argv[i];
    if (a.rfind("--", 0) != 0 || !allowed.count(a.substr(2)))
      mmgrad::fail("mmgrad", "unknown option '" + a + "' (see mmgrad --help)");
    if (i + 1 >= argc) mmgrad::fail("mmgrad", "option '" + a + "' needs a value");
    out[a.substr(2)] = argv[++i];
  }
  return out;
}

int64_t to_int(const std::string& name, const std::string& v) {
  try {
    size_t used = 0;
    int64_t x = std::stoll(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  mmgrad::fail("mmgrad", "option --" + name + " expects an integer, got '" + v + "'");
}

double to_double(const std::string& name, const std::string& v) {
  try {
    size_t used = 0;
    double x = std::stod(v, &used);
    if (used == v.size()) return x;
  } catch (const std::exception&) {
  }
  mmgrad::fail("mmgrad", "option --" + name + " expects a number, got '" + v + "'");
}

int run(int argc, char** argv) {
  if (argc < 2 || !std::strcmp(argv[1], "--help") || !std::strcmp(argv[1], "-h")) {
    fmt::print("{}", kUsage);
    return argc < 2 ? 2 : 0;
  }
  std::string cmd = argv[1];
  if (cmd == "info") {
    fmt::print("mmgrad 0.1.0\n{}\nthreads: {}\n", mmgrad::blas_summary(), mmgrad::num_threads());
#ifdef MMGRAD_HAVE_CUDA_RUNTIME
    fmt::print("{}\n", mmgrad::cuda::describe_devices());
#else
    fmt::print("CUDA: not built in (configure with -Dcuda=enabled)\n");
#endif
    return 0;
  }
  if (cmd == "mlp") {
    auto opts = parse_options(argc, argv, 2, {{"steps", ""}, {"hidden", ""}, {"lr", ""}, {"seed", ""}});
    mmgrad::apps::MlpOptions o;
    if (opts.count("steps")) o.steps = to_int("steps", opts["steps"]);
    if (opts.count("hidden")) o.hidden = to_int("hidden", opts["hidden"]);
    if (opts.count("lr")) o.lr = to_double("lr", opts["lr"]);
    if (opts.count("seed")) o.seed = static_cast<uint64_t>(to_int("seed", opts["seed"]));
    if (o.steps <= 0 || o.hidden <= 0) mmgrad::fail("mmgrad", "--steps and --hidden must be positive");
    fmt::print("{}\n", mmgrad::blas_summary());
    double acc = mmgrad::apps::run_mlp_example(o);
    fmt::print("final training accuracy {:.3f}\n", acc);
    return 0;
  }
  mmgrad::fail("mmgrad", "unknown command '" + cmd + "' (see mmgrad --help)");
}

}  // namespace

int main(int argc, char** argv) {
  mmgrad::ensure_blas_kernels(argc, argv);
  try {
    return run(argc, argv);
  } catch (const mmgrad::Error& e) {
    fmt::print(stderr, "{}\n", e.what());
    return 1;
  } catch (const std::exception& e) {
    fmt::print(stderr, "mmgrad: error: {}\n", e.what());
    return 1;
  }
}
