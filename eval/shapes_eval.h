// Evaluation on the built-in shapes dataset: retrieval, zero-shot colour and shape
// classification from text prompts, image-text matching, and generated captions, each with
// its chance level.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/bpe.h"
#include "data/shapes.h"
#include "eval/retrieval.h"
#include "models/clip.h"

namespace mmgrad::eval {

struct ShapesEval {
  std::string split;  // "held-out" or "train"
  int64_t samples = 0;
  Recall image_to_text, text_to_image, chance;

  // Zero-shot on the one-object images: each of the 24 (colour, shape) classes is the mean
  // embedding of its prompt ensemble (data::class_prompts); colour and shape are each read
  // from the class logits pooled over the other attribute (log-sum-exp), the pair from the
  // best class.
  int64_t zero_shot_samples = 0;
  double colour_accuracy = 0, shape_accuracy = 0, pair_accuracy = 0;
  // Per true (colour, shape) pair: how many images, how many with the shape right, and what
  // the shape was read as (index = data::ShapeKind). Shows which combinations generalise
  // and what the others are mistaken for.
  struct PairShapes {
    std::string name;  // "red circle"
    int shape = 0;     // the true shape (data::ShapeKind)
    int64_t images = 0, right = 0;
    std::vector<int64_t> read_as;
  };
  std::vector<PairShapes> shape_by_pair;

  // ITM (needs the fusion model): accuracy over positives and negatives, the negatives being
  // a random other image (the previous sample) or the hardest one, the most similar image by
  // the contrastive embeddings among those whose objects differ in colour or shape.
  bool has_itm = false;
  double itm_accuracy = 0, itm_hard_accuracy = 0;

  // Captions (needs the caption decoder): greedy captions of the first samples; a caption
  // counts as right when it names the colour and the shape (any synonym) of every object.
  bool has_captions = false;
  int64_t caption_samples = 0;
  double caption_accuracy = 0;
  std::vector<std::pair<std::string, std::string>> caption_examples;  // (reference, generated)
};

// The first `count` samples of a split (the dataset seed is the run's seed).
ShapesEval evaluate_shapes(const nn::ClipModel& model, const data::Tokenizer& tokenizer, data::Split split,
                           int64_t count, uint64_t seed, int64_t caption_count = 200, int64_t examples = 6);

// A human-readable report with chance levels beside the scores.
std::string format_eval(const ShapesEval& e);
// The same figures as one JSON object.
std::string eval_json(const ShapesEval& e);

}  // namespace mmgrad::eval
