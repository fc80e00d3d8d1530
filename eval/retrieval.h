// Retrieval metrics from a similarity matrix.
#pragma once
#include <cstdint>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::eval {

struct Recall {
  double at1 = 0, at5 = 0, at10 = 0;
};

// similarity [N, M] (queries x candidates); the right candidate for query i is column i
// (N <= M). A query counts as found at k when fewer than k candidates score strictly
// higher than the right one.
Recall recall_at_k(const Tensor& similarity);

// Chance level of recall@k among m candidates: k / m.
Recall chance_recall(int64_t candidates);

// With several right answers per query (a caption table where images share captions, or an
// image has several captions): candidate j is right for query i when their groups are equal.
// A query counts as found at k when fewer than k wrong candidates score strictly higher than
// its best right one. `chance` gets the expected recall of a random ranking.
Recall recall_at_k_grouped(const Tensor& similarity, const std::vector<int64_t>& query_groups,
                           const std::vector<int64_t>& candidate_groups, Recall* chance = nullptr);

}  // namespace mmgrad::eval
