// The built-in dataset: procedurally drawn RGB images of coloured shapes with English
// captions, no download needed.
//
// A sample has one or two objects (shape, colour, size, position), each painted in a varied
// shade of its colour on a dark, slightly noisy background. Captions come from several
// templates and synonyms ("a small red circle on the left", "a blue box above a green ball",
// ...). Everything about sample i of a split is a pure function of (seed, split, i), so any
// order, thread count or resume gives the same data. Some (colour, shape) combinations are held
// out: they never appear in the training split and make up the held-out split, which tests
// compositional generalisation.
#pragma once
#include <array>
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::data {

enum class ShapeKind : int { Circle, Square, Triangle, Diamond };
constexpr int kNumShapes = 4;
constexpr int kNumColours = 6;  // red, green, blue, yellow, purple, orange

enum class Split { Train, HeldOut };

struct ShapeObject {
  ShapeKind shape;
  int colour;        // index into colour_names()
  bool large;
  float cx, cy, r;   // centre and radius in pixels
  float rgb[3] = {0, 0, 0};  // the shade it is painted in: a variation of its colour (shapes.cpp)
};

struct ShapesSample {
  Tensor image;                      // f32 [3, S, S], values in [0, 1]
  std::string caption;
  std::vector<ShapeObject> objects;  // 1 or 2
  // With two objects: where the first is relative to the second.
  enum class Relation { None, LeftOf, RightOf, Above, Below } relation = Relation::None;
};

const std::vector<std::string>& shape_names();   // canonical names: circle, square, ...
const std::vector<std::string>& colour_names();  // red, green, ...
// The RGB of each colour (in [0, 1]) that objects' shades vary around.
std::array<float, 3> base_rgb(int colour);
// Every word the captions use for each shape (index = ShapeKind): circle, disk, ball, ...
const std::vector<std::vector<std::string>>& shape_synonyms();
// Captions of one object of this colour and shape in the dataset's own templates and every
// synonym ("a red circle", "the red disk", "a picture of a red ball", ...): the prompt
// ensemble for zero-shot classification, as CLIP averages many templates per class.
std::vector<std::string> class_prompts(int colour, ShapeKind shape);
// The (colour, shape) pairs kept out of training.
bool is_held_out(int colour, ShapeKind shape);

class ShapesDataset {
 public:
  ShapesDataset(Split split, int64_t size, uint64_t seed = 0, int64_t image_size = 32);
  int64_t size() const { return size_; }
  int64_t image_size() const { return image_size_; }
  Split split() const { return split_; }
  // render_image = false leaves `image` undefined (captions and objects are unchanged).
  ShapesSample get(int64_t index, bool render_image = true) const;

 private:
  Split split_;
  int64_t size_, image_size_;
  uint64_t seed_;
};

}  // namespace mmgrad::data
