#include "eval/retrieval.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

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

Recall recall_at_k_grouped(const Tensor& similarity, const std::vector<int64_t>& query_groups,
                           const std::vector<int64_t>& candidate_groups, Recall* chance) {
  if (similarity.dim() != 2 || similarity.shape()[0] == 0 ||
      static_cast<int64_t>(query_groups.size()) != similarity.shape()[0] ||
      static_cast<int64_t>(candidate_groups.size()) != similarity.shape()[1])
    fail("recall_at_k", "expects a non-empty [N, M] similarity and one group per query and per candidate",
         {describe("similarity", similarity)});
  const int64_t N = similarity.shape()[0], M = similarity.shape()[1];
  const std::vector<double> s = to_vector<double>(similarity);
  Recall r, c;
  for (int64_t i = 0; i < N; ++i) {
    double best_right = -INFINITY;
    int64_t rights = 0;
    for (int64_t j = 0; j < M; ++j)
      if (candidate_groups[static_cast<size_t>(j)] == query_groups[static_cast<size_t>(i)])
        best_right = std::max(best_right, s[static_cast<size_t>(i * M + j)]), ++rights;
    if (rights == 0) fail("recall_at_k", fmt::format("query {} has no right candidate", i));
    int64_t higher = 0;
    for (int64_t j = 0; j < M; ++j)
      higher += candidate_groups[static_cast<size_t>(j)] != query_groups[static_cast<size_t>(i)] &&
                s[static_cast<size_t>(i * M + j)] > best_right;
    r.at1 += higher < 1, r.at5 += higher < 5, r.at10 += higher < 10;
    // A random ranking misses all `rights` in the top k with probability C(M-g, k) / C(M, k).
    auto hit = [&](int64_t k) {
      double miss = 1;
      for (int64_t t = 0; t < std::min(k, M); ++t) miss *= std::max(0.0, static_cast<double>(M - rights - t)) / static_cast<double>(M - t);
      return 1 - miss;
    };
    c.at1 += hit(1), c.at5 += hit(5), c.at10 += hit(10);
  }
  const auto n = static_cast<double>(N);
  r.at1 /= n, r.at5 /= n, r.at10 /= n;
  if (chance) *chance = {c.at1 / n, c.at5 / n, c.at10 / n};
  return r;
}

}  // namespace mmgrad::eval
