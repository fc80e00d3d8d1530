// Retrieval metrics.
#include <gtest/gtest.h>

#include "autograd/ops.h"
#include "eval/retrieval.h"

using namespace mmgrad;

TEST(Retrieval, RecallCountsCandidatesScoringAboveTheRightOne) {
  // Row 0: right one best. Row 1: two candidates above. Row 2: six above (of 8 columns).
  std::vector<float> s = {
      0.9f, 0.1f, 0.2f, 0.0f, 0.0f, 0.0f, 0.0f, 0.0f,  //
      0.8f, 0.5f, 0.7f, 0.1f, 0.1f, 0.1f, 0.1f, 0.1f,  //
      0.9f, 0.9f, 0.1f, 0.9f, 0.9f, 0.9f, 0.9f, 0.0f,  //
  };
  eval::Recall r = eval::recall_at_k(from_data(s, {3, 8}));
  EXPECT_DOUBLE_EQ(r.at1, 1.0 / 3);
  EXPECT_DOUBLE_EQ(r.at5, 2.0 / 3);
  EXPECT_DOUBLE_EQ(r.at10, 1.0);
  eval::Recall c = eval::chance_recall(100);
  EXPECT_DOUBLE_EQ(c.at1, 0.01);
  EXPECT_DOUBLE_EQ(c.at10, 0.1);
  EXPECT_THROW(eval::recall_at_k(from_data(s, {8, 3})), Error);
}
