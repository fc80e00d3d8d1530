#include "eval/retrieval.h"

#include <algorithm>

#include "autograd/ops.h"

namespace mmgrad::eval {

Recall recall_at_k(const Tensor& similarity) {
  if (similarity.dim() != 2 || similarity.shape()[0] > similarity.shape()[1] || similarity.shape()[0] == 0)
    fail("recall_at_k", "expects a non-empty [N, M] similarity with N <= M", {describe("similarity", similarity)});
  const int64_t N = similarity.shape()[0], M = similarity.shape()[1];
  const std::vector<double> s = to_vector<double>(similarity);
  Recall r;
  for (int64_t i = 0; i < N; ++i) {
    const double right = s[static_cast<size_t>(i * M + i)];
    int64_t higher = 0;
    for (int64_t j = 0; j < M; ++j) higher += s[static_cast<size_t>(i * M + j)] > right;
    r.at1 += higher < 1, r.at5 += higher < 5, r.at10 += higher < 10;
  }
  r.at1 /= static_cast<double>(N), r.at5 /= static_cast<double>(N), r.at10 /= static_cast<double>(N);
  return r;
}

Recall chance_recall(int64_t candidates) {
  const auto m = static_cast<double>(std::max<int64_t>(candidates, 1));
  return {std::min(1.0, 1 / m), std::min(1.0, 5 / m), std::min(1.0, 10 / m)};
}

}  // namespace mmgrad::eval
