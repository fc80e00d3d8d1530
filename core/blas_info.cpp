#include "core/blas_info.h"

#include <algorithm>
#include <cctype>
#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <sstream>
#include <string_view>
#include <vector>

#include <unistd.h>

#include "backends/cpu/gemm.h"

#ifdef MMGRAD_HAVE_OPENBLAS
#include <cblas.h>
#endif

namespace mmgrad {
namespace {

constexpr const char* kCoreVar = "OPENBLAS_CORETYPE";
constexpr const char* kGuardVar = "MMGRAD_BLAS_REEXEC";
constexpr const char* kOverrideVar = "MMGRAD_BLAS_OVERRIDE_CORETYPE";

std::string lower(std::string_view s) {
  std::string out(s);
  for (char& c : out) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return out;
}

[[maybe_unused]] std::string recommended_core() {
#if defined(__x86_64__) || defined(__i386__)
  if (__builtin_cpu_supports("avx512f") && __builtin_cpu_supports("avx512bw") &&
      __builtin_cpu_supports("avx512dq") && __builtin_cpu_supports("avx512vl"))
    return "SkylakeX";
  if (__builtin_cpu_supports("avx2") && __builtin_cpu_supports("fma")) return "Haswell";
#endif
  return "";
}

// How capable an OpenBLAS x86 core's kernels are: 3 AVX-512, 2 AVX2+FMA, 1 anything older,
// 0 for "" (no recommendation).
[[maybe_unused]] int core_rank(std::string_view core) {
  const std::string c = lower(core);
  if (c.empty()) return 0;
  if (c == "skylakex" || c == "cooperlake" || c == "sapphirerapids") return 3;
  if (c == "haswell" || c == "zen") return 2;
  return 1;
}

[[maybe_unused]] bool guard_set() {
  const char* g = std::getenv(kGuardVar);
  return g && std::strcmp(g, "1") == 0;
}

#ifdef MMGRAD_HAVE_OPENBLAS
std::string openblas_version() {
  // openblas_get_config(): "OpenBLAS 0.3.21 NO_LAPACKE DYNAMIC_ARCH NO_AFFINITY Haswell ..."
  const char* cfg = openblas_get_config();
  std::istringstream in(cfg ? cfg : "");
  std::string name, version;
  in >> name >> version;
  if (lower(name) == "openblas" && !version.empty()) return "openblas " + version;
  return "openblas";
}

bool openblas_dynamic_arch() {
  const char* cfg = openblas_get_config();
  return cfg && std::strstr(cfg, "DYNAMIC_ARCH") != nullptr;
}
#endif

[[maybe_unused]] void warn(const std::string& msg) {
  std::fprintf(stderr, "mmgrad: warning: %s\n", msg.c_str());
  std::fflush(stderr);
}

}  // namespace

BlasInfo blas_info() {
  BlasInfo info;
#ifdef MMGRAD_HAVE_OPENBLAS
  info.library = openblas_version();
  const char* core = openblas_get_corename();
  info.core = core ? core : "unknown";
  info.recommended_core = recommended_core();
  info.core_mismatch = core_rank(info.core) < core_rank(info.recommended_core);
  info.user_set = std::getenv(kCoreVar) != nullptr && !guard_set();
  info.threads = openblas_get_num_threads();
#else
  info.library = "builtin";
  info.core = std::string("builtin-") + cpu::builtin_gemm_isa();
  info.recommended_core = "";
  info.core_mismatch = false;
  info.user_set = false;
  info.threads = cpu::builtin_gemm_threads();
#endif
  return info;
}

void ensure_blas_kernels(int argc, char** argv) {
#ifdef MMGRAD_HAVE_OPENBLAS
  const BlasInfo info = blas_info();
  if (!info.core_mismatch) return;
  const std::string& rec = info.recommended_core;
  const char* force = std::getenv(kOverrideVar);
  if (info.user_set && !(force && std::strcmp(force, "1") == 0)) {
    warn("OPENBLAS_CORETYPE=" + std::string(std::getenv(kCoreVar)) + " (set by you) makes " +
         info.library + " run its " + info.core + " kernels, but this CPU supports " + rec +
         "; set OPENBLAS_CORETYPE=" + rec + " (or unset it, or set " + kOverrideVar +
         "=1 to let mmgrad replace it) for faster matmuls");
    return;
  }
  if (guard_set()) {
    warn(info.library + " still runs its " + info.core + " kernels after mmgrad restarted it " +
         "with OPENBLAS_CORETYPE=" + rec + "; this OpenBLAS build cannot use " + rec +
         " kernels: install one that can, or build mmgrad with -Dblas=none");
    return;
  }
  if (!openblas_dynamic_arch()) {
    warn(info.library + " was built without DYNAMIC_ARCH and runs its " + info.core +
         " kernels, but this CPU supports " + rec +
         ": install an OpenBLAS built for this CPU, or build mmgrad with -Dblas=none");
    return;
  }
  std::vector<char*> args;
  if (argc > 0 && argv) {
    for (int i = 0; i < argc; ++i) args.push_back(argv[i]);
  } else {
    args.push_back(const_cast<char*>("/proc/self/exe"));
  }
  args.push_back(nullptr);
  ::setenv(kCoreVar, rec.c_str(), 1);
  ::setenv(kGuardVar, "1", 1);
  std::fflush(stdout);
  std::fflush(stderr);
  ::execv("/proc/self/exe", args.data());
  // Only reached when exec failed: undo, so child processes start from the user's environment.
  const int err = errno;
  ::unsetenv(kCoreVar);
  ::unsetenv(kGuardVar);
  warn(info.library + " runs its " + info.core + " kernels but this CPU supports " + rec +
       ", and restarting with OPENBLAS_CORETYPE=" + rec + " failed (" + std::strerror(err) +
       "); run with OPENBLAS_CORETYPE=" + rec + " set for faster matmuls");
#else
  (void)argc;
  (void)argv;
#endif
}

std::string blas_summary() {
  const BlasInfo info = blas_info();
  std::string s = "BLAS: " + info.library + ", core " + info.core;
#ifdef MMGRAD_HAVE_OPENBLAS
  if (std::getenv(kCoreVar)) s += info.user_set ? " (set by user)" : " (set by mmgrad)";
  else s += " (auto-detected)";
#endif
  s += ", " + std::to_string(info.threads) + (info.threads == 1 ? " thread" : " threads");
  if (info.core_mismatch) s += " [slow: CPU supports " + info.recommended_core + "]";
  return s;
}

}  // namespace mmgrad
