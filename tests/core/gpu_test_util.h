// GPU tests skip, saying why, where there is no usable GPU (CI has none; the CUDA code still
// compiles there), and a GPU test file built without CUDA has one test that skips saying so.
// Include after gtest.
#pragma once
#include <gtest/gtest.h>

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"

#define MMGRAD_REQUIRE_GPU()                                                                   \
  do {                                                                                         \
    if (!::mmgrad::cuda::available())                                                          \
      GTEST_SKIP() << "no usable GPU: " << ::mmgrad::cuda::unavailable_reason();               \
  } while (0)
#endif

// A GPU test file's one test in a build without the CUDA backend.
#define MMGRAD_TEST_NEEDS_CUDA_BUILD(suite) \
  TEST(suite, NeedsABuildWithCuda) { GTEST_SKIP() << "this build has no CUDA backend (meson -Dcuda=enabled)"; }
