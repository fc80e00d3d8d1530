// The held-out lines of the shapes evaluation: per pair, how many shapes were right and what
// the others were read as, most frequent first.
#include <gtest/gtest.h>

#include "eval/shapes_eval.h"

using namespace mmgrad;

TEST(ShapesEvalFormat, HeldOutPairsSayWhatTheWrongShapesWereReadAs) {
  eval::ShapesEval e;
  // green square (shape 1): 79 right, 20 read as circle (0), 7 as diamond (3).
  e.shape_by_pair.push_back({"green square", 1, 106, 79, {20, 79, 0, 7}});
  // yellow diamond (shape 3): all right.
  e.shape_by_pair.push_back({"yellow diamond", 3, 124, 124, {0, 0, 0, 124}});
  const std::string text = eval::format_eval(e);
  EXPECT_NE(text.find("shape right on green square:     79 of 106 images   (else circle 20, diamond 7)\n"), std::string::npos)
      << text;
  EXPECT_NE(text.find("shape right on yellow diamond:  124 of 124 images\n"), std::string::npos) << text;
}
