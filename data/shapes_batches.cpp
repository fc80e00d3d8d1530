#include "data/shapes_batches.h"

#include <algorithm>
#include <cstring>

#include "autograd/ops.h"
#include "core/parallel.h"

namespace mmgrad::data {

std::vector<ShapesSample> shapes_samples(const ShapesDataset& dataset, const std::vector<int64_t>& indices,
                                         bool render_images) {
  std::vector<ShapesSample> out(indices.size());
  parallel_for(0, static_cast<int64_t>(indices.size()), 8, [&](int64_t begin, int64_t end) {
    for (int64_t i = begin; i < end; ++i) out[static_cast<size_t>(i)] = dataset.get(indices[static_cast<size_t>(i)], render_images);
  });
  return out;
}

ImageTextBatch shapes_batch(const ShapesDataset& dataset, const Tokenizer& tokenizer, int64_t context_length,
                            const std::vector<int64_t>& indices) {
  return samples_batch(shapes_samples(dataset, indices), tokenizer, context_length);
}

ImageTextBatch samples_batch(const std::vector<ShapesSample>& samples, const Tokenizer& tokenizer,
                             int64_t context_length) {
  if (samples.empty() || !samples[0].image.defined()) fail("samples_batch", "needs rendered samples");
  const int64_t B = static_cast<int64_t>(samples.size()), S = samples[0].image.shape()[1];
  ImageTextBatch batch;
  batch.images = empty({B, 3, S, S});
  float* dst = batch.images.data_ptr<float>();
  for (int64_t b = 0; b < B; ++b) {
    const ShapesSample& sample = samples[static_cast<size_t>(b)];
    std::memcpy(dst + b * 3 * S * S, sample.image.data_ptr<float>(), sizeof(float) * static_cast<size_t>(3 * S * S));
    batch.captions.push_back(sample.caption);
    batch.groups.push_back(content_group(sample));
  }
  batch.ids = tokenizer.encode_batch(batch.captions, context_length);
  return batch;
}

int64_t content_group(const ShapesSample& sample) {
  std::vector<int64_t> codes;
  for (const ShapeObject& o : sample.objects) codes.push_back(o.colour * kNumShapes + static_cast<int64_t>(o.shape));
  std::sort(codes.begin(), codes.end());
  const int64_t pairs = kNumColours * kNumShapes;
  int64_t id = 0;
  for (int64_t c : codes) id = id * (pairs + 1) + c + 1;  // base pairs+1, digits 1..pairs: unique per multiset
  return id;
}

BpeTokenizer train_shapes_tokenizer(const ShapesDataset& train_split, int64_t vocab_size, int64_t corpus_size) {
  // Captions only: rendering the images would be wasted work here.
  std::vector<int64_t> indices(static_cast<size_t>(std::min(corpus_size, train_split.size())));
  for (size_t i = 0; i < indices.size(); ++i) indices[i] = static_cast<int64_t>(i);
  std::vector<std::string> corpus;
  for (const ShapesSample& s : shapes_samples(train_split, indices, false)) corpus.push_back(s.caption);
  return BpeTokenizer::train(corpus, vocab_size);
}

}  // namespace mmgrad::data
