// Which BLAS mmgrad runs on, and a fix for OpenBLAS picking slow kernels.
//
// Debian's OpenBLAS 0.3.21 (DYNAMIC_ARCH) does not recognise newer CPUs (e.g. AMD Zen 5) and
// silently falls back to its generic "Prescott" kernels, about 5x slower than the AVX-512 ones
// the CPU can run. OpenBLAS reads OPENBLAS_CORETYPE only when it loads, so the fix has to
// happen before that: ensure_blas_kernels() re-executes the program with the variable set.
#pragma once
#include <string>

namespace mmgrad {

struct BlasInfo {
  std::string library;           // "openblas 0.3.21" or "builtin"
  std::string core;              // openblas_get_corename(), or "builtin-avx512"/"builtin-avx2"/...
  std::string recommended_core;  // "SkylakeX" (avx512f+bw+dq+vl), "Haswell" (avx2+fma), or ""
  bool core_mismatch = false;    // the running core is a weaker one than recommended
  bool user_set = false;         // OPENBLAS_CORETYPE was set by the user (not by mmgrad)
  int threads = 1;
};

BlasInfo blas_info();

// Call first thing in main() of every mmgrad program (apps, bench, tests). If OpenBLAS is in
// use, its core is weaker than the CPU supports and the user has not set OPENBLAS_CORETYPE,
// sets OPENBLAS_CORETYPE=<recommended> and re-executes /proc/self/exe with the same argv
// (guarded by MMGRAD_BLAS_REEXEC=1 against loops). A value the user set is always respected;
// then, or when the re-exec is impossible or fails, one warning line goes to stderr naming the
// core and the fix. MMGRAD_BLAS_OVERRIDE_CORETYPE=1 opts in to replacing a weaker value that
// the environment set (e.g. a machine image exporting OPENBLAS_CORETYPE=Haswell).
// Without OpenBLAS it does nothing.
void ensure_blas_kernels(int argc, char** argv);

// One line, e.g. "BLAS: openblas 0.3.21, core SkylakeX (set by mmgrad), 2 threads".
std::string blas_summary();

}  // namespace mmgrad
