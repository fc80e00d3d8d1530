// Evaluation on real data given on the command line: retrieval on an image-caption table,
// zero-shot classification on a folder-per-class image set (CLIP's prompt-ensemble
// classifier), and a few generated captions when the model has a caption decoder.
#pragma once
#include <cstdint>
#include <string>
#include <utility>
#include <vector>

#include "data/caption_table.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/tokenizer.h"
#include "eval/retrieval.h"
#include "models/clip.h"

namespace mmgrad::eval {

struct TableEval {
  std::string source;
  int64_t samples = 0;
  Recall image_to_text, text_to_image, chance_image_to_text, chance_text_to_image;
  std::vector<std::pair<std::string, std::string>> caption_examples;  // (reference, generated)
};

struct ZeroShotEval {
  std::string source;
  int64_t samples = 0, templates = 0;
  double top1 = 0, top5 = 0, chance = 0;
  std::vector<std::pair<std::string, double>> per_class;  // class name -> top-1 accuracy
};

struct ImageEvalSettings {
  data::Preprocess preprocess;
  data::DecodeOptions decode;
  int64_t max_samples = 1000;   // the first rows or images (evenly spaced when there are more)
  int64_t caption_examples = 6;
};

// Retrieval among the evaluated rows: rows sharing an image or a caption count as right
// answers for each other (data::match_groups).
TableEval evaluate_table(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const data::CaptionTable& table,
                         const ImageEvalSettings& settings);

// Each class is the normalised mean text embedding of its prompts; an image takes the class
// with the highest cosine. Templates use "{}" for the class name.
ZeroShotEval evaluate_zero_shot(const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                                const data::ClassFolder& folder, const std::vector<std::string>& templates,
                                const ImageEvalSettings& settings);

// CLIP-style templates for zero-shot ("a photo of a {}.", ...); `spec` is '|'-separated, ""
// gives the defaults. A template without "{}" is an error.
std::vector<std::string> prompt_templates(const std::string& spec);

std::string format_table_eval(const TableEval& e);
std::string format_zero_shot(const ZeroShotEval& e);
std::string table_eval_json(const TableEval& e);
std::string zero_shot_json(const ZeroShotEval& e);

}  // namespace mmgrad::eval
