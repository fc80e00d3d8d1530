#include "eval/embedding.h"

#include <algorithm>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/parallel.h"
#include "models/generate.h"
#include "models/losses.h"

namespace mmgrad::eval {
namespace {
constexpr int64_t kChunk = 250;  // inputs per forward pass
}  // namespace

Tensor load_image_files(const std::vector<std::string>& paths, const data::Preprocess& preprocess,
                        const data::DecodeOptions& decode) {
  const int64_t S = preprocess.image_size, n = static_cast<int64_t>(paths.size());
  std::vector<float> pixels(static_cast<size_t>(n * 3 * S * S));
  parallel_for(0, n, 4, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i)
      data::preprocess_eval(data::decode_image_file(paths[static_cast<size_t>(i)], decode), preprocess,
                            pixels.data() + i * 3 * S * S);
  });
  return from_data(pixels, {n, 3, S, S});
}

Tensor embed_images(const nn::ClipModel& model, const Tensor& images) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (int64_t a = 0; a < images.shape()[0]; a += kChunk)
    parts.push_back(model.encode_image(narrow(images, 0, a, std::min(kChunk, images.shape()[0] - a))));
  return concat(parts, 0);
}

Tensor embed_texts(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const std::vector<std::string>& texts) {
  NoGradGuard no_grad;
  std::vector<Tensor> parts;
  for (size_t a = 0; a < texts.size(); a += kChunk) {
    const std::vector<std::string> chunk(texts.begin() + static_cast<std::ptrdiff_t>(a),
                                         texts.begin() + static_cast<std::ptrdiff_t>(std::min(texts.size(), a + kChunk)));
    parts.push_back(model.encode_text(tokenizer.encode_batch(chunk, model.config.context_length)));
  }
  return concat(parts, 0);
}

Tensor class_embeddings(const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                        const std::vector<std::string>& class_names, const std::vector<std::string>& templates) {
  NoGradGuard no_grad;
  std::vector<Tensor> classes;
  for (const std::string& name : class_names) {
    std::vector<std::string> prompts;
    for (const std::string& t : templates) {
      const size_t at = t.find("{}");
      if (at == std::string::npos) fail("prompts", "template '" + t + "' has no {} where the class name goes");
      prompts.push_back(t.substr(0, at) + name + t.substr(at + 2));
    }
    classes.push_back(nn::l2_normalize(mean(embed_texts(model, tokenizer, prompts), {0}, true)));
  }
  return concat(classes, 0);
}

std::vector<std::string> caption_images(const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                                        const Tensor& images) {
  if (!model.caption_model) fail("caption", "this model has no caption decoder (caption_layers = 0)");
  NoGradGuard no_grad;
  std::vector<std::string> out;
  for (int64_t a = 0; a < images.shape()[0]; a += kChunk) {
    const auto ids = nn::generate_captions(model, narrow(images, 0, a, std::min(kChunk, images.shape()[0] - a)),
                                           tokenizer.start_token(), model.config.context_length);
    for (const auto& c : ids) out.push_back(tokenizer.decode(c));
  }
  return out;
}

std::vector<std::vector<std::pair<int64_t, double>>> top_k(const Tensor& scores, int64_t k) {
  if (scores.dim() != 2) fail("top_k", "expects scores [Q, N]", {describe("scores", scores)});
  const int64_t Q = scores.shape()[0], N = scores.shape()[1];
  const std::vector<double> s = to_vector<double>(scores);
  std::vector<std::vector<std::pair<int64_t, double>>> out(static_cast<size_t>(Q));
  for (int64_t q = 0; q < Q; ++q) {
    std::vector<int64_t> idx(static_cast<size_t>(N));
    for (int64_t j = 0; j < N; ++j) idx[static_cast<size_t>(j)] = j;
    const int64_t m = std::min(k, N);
    // Ties keep the earlier index first, so the ranking is reproducible.
    std::partial_sort(idx.begin(), idx.begin() + m, idx.end(), [&](int64_t a, int64_t b) {
      const double x = s[static_cast<size_t>(q * N + a)], y = s[static_cast<size_t>(q * N + b)];
      return x > y || (x == y && a < b);
    });
    for (int64_t j = 0; j < m; ++j)
      out[static_cast<size_t>(q)].emplace_back(idx[static_cast<size_t>(j)], s[static_cast<size_t>(q * N + idx[static_cast<size_t>(j)])]);
  }
  return out;
}

}  // namespace mmgrad::eval
