// GPU tests skip, saying why, where there is no usable GPU (CI has none; the CUDA code still
// compiles there). Include after gtest; only in builds with CUDA.
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
