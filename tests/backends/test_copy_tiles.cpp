// contiguous() of transposed views takes the tiled copy path; its values must equal a direct
// strided read of the view, for ragged tile edges, batch dims and every element size.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/test_util.h"

using namespace mmgrad;

namespace {
template <typename T>
void expect_same_as_strided_read(const Tensor& view) {
  Tensor dense = contiguous(view);
  ASSERT_TRUE(dense.is_contiguous());
  std::vector<T> want = mmtest::strided_values<T>(view);
  std::vector<T> got(dense.data_ptr<T>(), dense.data_ptr<T>() + dense.numel());
  EXPECT_EQ(got, want) << view.describe();
}
}  // namespace

TEST(CopyTiles, TransposesWithRaggedEdges) {
  NoGradGuard no_grad;
  for (auto [r, c] : {std::pair<int64_t, int64_t>{70, 45}, {33, 129}, {64, 64}, {1000, 7}}) {
    Tensor x = randn({r, c});
    expect_same_as_strided_read<float>(transpose(x, 0, 1));
    expect_same_as_strided_read<double>(transpose(x.to(DType::F64), 0, 1));
  }
}

TEST(CopyTiles, PermutationsWithBatchDims) {
  NoGradGuard no_grad;
  Tensor x = randn({3, 50, 33, 4});
  expect_same_as_strided_read<float>(permute(x, {0, 3, 2, 1}));
  expect_same_as_strided_read<float>(permute(x, {2, 0, 3, 1}));
  // Attention's head split: [B, T, H, D] -> [B, H, T, D] keeps D dense (not the tiled path)
  // and [B, H, D, T] (K transposed) is dense along D.
  expect_same_as_strided_read<float>(permute(x, {0, 2, 1, 3}));
  expect_same_as_strided_read<float>(permute(x, {0, 2, 3, 1}));
}

TEST(CopyTiles, OtherElementSizes) {
  NoGradGuard no_grad;
  Tensor x = randint(-1000, 1000, {90, 70});
  expect_same_as_strided_read<int64_t>(transpose(x, 0, 1));
  expect_same_as_strided_read<int32_t>(transpose(x.to(DType::I32), 0, 1));
  Tensor h = randn({90, 70}).to(DType::BF16);
  Tensor ht = contiguous(transpose(h, 0, 1));
  EXPECT_TRUE(allclose(ht.to(DType::F32), contiguous(transpose(h.to(DType::F32), 0, 1)), 0, 0));
}
