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

}  // namespace mmgrad::eval
