// The OpenBLAS kernel check: what blas_info() reports, and what `mmgrad info` does when
// started with a weaker OPENBLAS_CORETYPE than the CPU supports (re-executes itself with the
// right one only when allowed to; otherwise keeps the user's value and warns).
#include <gtest/gtest.h>

#include <cstdlib>
#include <string>

#include "core/blas_info.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_OPENBLAS
namespace {
// Runs `mmgrad info` with extra environment assignments (env(1) syntax, "-u NAME" to unset).
mmtest::AppRun run_info(const std::string& env) { return mmtest::run_app("info", env); }
}  // namespace
#endif

TEST(BlasInfo, ReportsTheLibraryAndCore) {
  mmgrad::BlasInfo info = mmgrad::blas_info();
  EXPECT_FALSE(info.library.empty());
  EXPECT_FALSE(info.core.empty());
  EXPECT_GE(info.threads, 1);
  std::string summary = mmgrad::blas_summary();
  EXPECT_NE(summary.find(info.core), std::string::npos) << summary;
#ifdef MMGRAD_HAVE_OPENBLAS
  EXPECT_EQ(info.library.rfind("openblas", 0), 0u) << info.library;
#else
  EXPECT_EQ(info.library, "builtin");
  EXPECT_EQ(info.core.rfind("builtin-", 0), 0u) << info.core;
#endif
}

#ifdef MMGRAD_HAVE_OPENBLAS
TEST(BlasInfo, WeakerUserCoreIsKeptWithAWarningOrReplacedWhenAllowed) {
  if (!std::getenv("MMGRAD_APP")) GTEST_SKIP() << "MMGRAD_APP (path of the mmgrad binary) is not set";
  const std::string rec = mmgrad::blas_info().recommended_core;
  if (rec.empty()) GTEST_SKIP() << "this CPU has no AVX2: there is no better core to pick";

  // The user's (weak) choice is respected, with a warning that names it and the fix.
  mmtest::AppRun kept = run_info("-u MMGRAD_BLAS_REEXEC -u MMGRAD_BLAS_OVERRIDE_CORETYPE OPENBLAS_CORETYPE=Prescott");
  ASSERT_EQ(kept.status, 0) << kept.out;
  EXPECT_NE(kept.out.find("core Prescott (set by user)"), std::string::npos) << kept.out;
  EXPECT_NE(kept.out.find("warning"), std::string::npos) << kept.out;
  EXPECT_NE(kept.out.find("OPENBLAS_CORETYPE=" + rec), std::string::npos) << kept.out;

  // Allowed to override: the program re-executes itself with the recommended core.
  mmtest::AppRun fixed = run_info("-u MMGRAD_BLAS_REEXEC MMGRAD_BLAS_OVERRIDE_CORETYPE=1 OPENBLAS_CORETYPE=Prescott");
  ASSERT_EQ(fixed.status, 0) << fixed.out;
  EXPECT_NE(fixed.out.find("core " + rec + " (set by mmgrad)"), std::string::npos) << fixed.out;
  EXPECT_EQ(fixed.out.find("[slow"), std::string::npos) << fixed.out;
}
#endif
