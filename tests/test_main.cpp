// GoogleTest main for every suite: fixes the OpenBLAS kernel first, as mmgrad's programs do.
#include <gtest/gtest.h>

#include "core/blas_info.h"

int main(int argc, char** argv) {
  mmgrad::ensure_blas_kernels(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  return RUN_ALL_TESTS();
}
