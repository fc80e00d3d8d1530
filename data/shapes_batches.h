// Batches of the built-in shapes dataset for training and evaluation: images rendered in
// parallel, captions tokenized with the run's BPE tokenizer.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

#include "core/tensor.h"
#include "data/bpe.h"
#include "data/shapes.h"

namespace mmgrad::data {

struct ImageTextBatch {
  Tensor images;                      // f32 [B, 3, S, S]
  Tensor ids;                         // i64 [B, context]: start, tokens, end, padding
  std::vector<std::string> captions;  // the texts the ids encode
  std::vector<int64_t> groups;        // content_group of each sample
};

// An id for what every caption of a sample names: the (colour, shape) of each object, in any
// order. Two samples of different groups never match each other's captions; samples of the
// same group may (captions also mention sizes, places and relations only sometimes).
int64_t content_group(const ShapesSample& sample);

// The samples at `indices`, rendered on the thread pool.
std::vector<ShapesSample> shapes_samples(const ShapesDataset& dataset, const std::vector<int64_t>& indices,
                                         bool render_images = true);

ImageTextBatch shapes_batch(const ShapesDataset& dataset, const Tokenizer& tokenizer, int64_t context_length,
                            const std::vector<int64_t>& indices);
// The batch of samples already rendered (all with images).
ImageTextBatch samples_batch(const std::vector<ShapesSample>& samples, const Tokenizer& tokenizer,
                             int64_t context_length);

// The tokenizer for a run on this dataset: byte-level BPE trained on the captions of the
// first `corpus_size` training samples, up to `vocab_size` tokens.
BpeTokenizer train_shapes_tokenizer(const ShapesDataset& train_split, int64_t vocab_size, int64_t corpus_size = 20000);

}  // namespace mmgrad::data
