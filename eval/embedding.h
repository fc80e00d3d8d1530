// Inference on images and texts with a trained model: images loaded from files, L2-normalised
// embeddings, and generated captions, each in chunks so memory stays bounded however many
// inputs there are. Used by the evaluations and by `mmgrad embed | search | caption |
// zeroshot`.
#pragma once
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/tokenizer.h"
#include "models/clip.h"

namespace mmgrad::eval {

// The files decoded and preprocessed for evaluation (resize, centre crop, normalise), on
// the thread pool: f32 [N, 3, S, S]. An unreadable file is an error naming it.
Tensor load_image_files(const std::vector<std::string>& paths, const data::Preprocess& preprocess,
                        const data::DecodeOptions& decode);

// [N, E] image and text embeddings (unit length, the model's projection space).
Tensor embed_images(const nn::ClipModel& model, const Tensor& images);
Tensor embed_texts(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const std::vector<std::string>& texts);

// Zero-shot classifier weights [C, E]: each class the normalised mean embedding of its
// prompts, the templates with "{}" replaced by the class name (CLIP's prompt ensemble).
Tensor class_embeddings(const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                        const std::vector<std::string>& class_names, const std::vector<std::string>& templates);

// Greedy captions of images [N, 3, S, S] (the model needs a caption decoder).
std::vector<std::string> caption_images(const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                                        const Tensor& images);

// The k best (index, score) of each row of scores [Q, N], best first.
std::vector<std::vector<std::pair<int64_t, double>>> top_k(const Tensor& scores, int64_t k);

}  // namespace mmgrad::eval
