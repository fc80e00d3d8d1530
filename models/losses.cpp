#include "models/losses.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/ops.h"
#include "models/clip.h"

namespace mmgrad::nn {
namespace {

constexpr int64_t kIgnore = -100;

void check_pair(const Tensor& image, const Tensor& text, const char* op) {
  if (image.dim() != 2 || text.dim() != 2 || image.shape() != text.shape())
    fail(op, "expects image and text embeddings of one shape [B, E]",
         {describe("image", image), describe("text", text)});
}

// log(1 + e^y), stable for large |y|: max(y, 0) + log(1 + e^-|y|).
Tensor softplus(const Tensor& y) { return add(relu(y), log(add(exp(neg(abs(y))), 1.0))); }

}  // namespace

Tensor l2_normalize(const Tensor& x) { return div(x, sqrt(sum(square(x), {-1}, true))); }

Tensor clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale) {
  check_pair(image, text, "clip_loss");
  const int64_t B = image.shape()[0];
  Tensor logits = mul(matmul(image, transpose(text, 0, 1)), exp(logit_scale));
  Tensor labels = arange(0, static_cast<double>(B), 1, DType::I64, image.device());
  return mul(add(cross_entropy(logits, labels), cross_entropy(transpose(logits, 0, 1), labels)), 0.5);
}

Tensor clip_loss_rows(const Tensor& image, const Tensor& text, const Tensor& all_image, const Tensor& all_text,
                      const Tensor& logit_scale, int64_t first_row) {
  check_pair(image, text, "clip_loss");
  check_pair(all_image, all_text, "clip_loss");
  const int64_t b = image.shape()[0], B = all_image.shape()[0];
  if (all_image.shape()[1] != image.shape()[1] || first_row < 0 || first_row + b > B)
    fail("clip_loss", "this rank's rows must lie inside the global batch",
         {describe("image", image), describe("all_image", all_image)});
  Tensor scale = exp(logit_scale);
  Tensor per_image = mul(matmul(image, transpose(all_text, 0, 1)), scale);  // [b, B]
  Tensor per_text = mul(matmul(text, transpose(all_image, 0, 1)), scale);
  Tensor labels = arange(static_cast<double>(first_row), static_cast<double>(first_row + b), 1, DType::I64,
                         image.device());
  return mul(add(cross_entropy(per_image, labels), cross_entropy(per_text, labels)), 0.5);
}

Tensor siglip_loss(const Tensor& image, const Tensor& text, const Tensor& t_prime, const Tensor& bias) {
  check_pair(image, text, "siglip_loss");
  const int64_t B = image.shape()[0];
  Tensor logits = add(mul(matmul(image, transpose(text, 0, 1)), exp(t_prime)), bias);
  // z = 2 I - 1; -log sigmoid(z l) = softplus(-z l).
  Tensor rows = unsqueeze(arange(0, static_cast<double>(B), 1, DType::I64, image.device()), 1);
  Tensor cols = unsqueeze(arange(0, static_cast<double>(B), 1, DType::I64, image.device()), 0);
  Tensor z = sub(mul(eq(rows, cols).to(logits.dtype()), 2.0), 1.0);
  return div(sum(softplus(neg(mul(z, logits)))), static_cast<double>(B));
}

Tensor siglip_loss_rows(const Tensor& image, const Tensor& all_text, const Tensor& t_prime, const Tensor& bias,
                        int64_t first_row) {
  if (image.dim() != 2 || all_text.dim() != 2 || image.shape()[1] != all_text.shape()[1] || first_row < 0 ||
      first_row + image.shape()[0] > all_text.shape()[0])
    fail("siglip_loss", "expects this rank's image rows [b, E] inside the global text batch [B, E]",
         {describe("image", image), describe("all_text", all_text)});
  const int64_t b = image.shape()[0], B = all_text.shape()[0];
  Tensor logits = add(mul(matmul(image, transpose(all_text, 0, 1)), exp(t_prime)), bias);  // [b, B]
  Tensor rows = unsqueeze(arange(static_cast<double>(first_row), static_cast<double>(first_row + b), 1, DType::I64,
                                 image.device()), 1);
  Tensor cols = unsqueeze(arange(0, static_cast<double>(B), 1, DType::I64, image.device()), 0);
  Tensor z = sub(mul(eq(rows, cols).to(logits.dtype()), 2.0), 1.0);
  return div(sum(softplus(neg(mul(z, logits)))), static_cast<double>(b));
}

int64_t caption_target_count(const Tensor& ids, int64_t eot_token_id) {
  const std::vector<int64_t> t = to_vector<int64_t>(caption_targets(ids, eot_token_id));
  return static_cast<int64_t>(std::count_if(t.begin(), t.end(), [](int64_t v) { return v != kIgnore; }));
}

Tensor caption_targets(const Tensor& ids, int64_t eot_token_id) {
  if (ids.dim() != 2 || ids.shape()[1] < 2)
    fail("caption_loss", "expects token ids [B, T] with T >= 2", {describe("ids", ids)});
  const int64_t B = ids.shape()[0], T = ids.shape()[1];
  std::vector<int64_t> v = to_vector<int64_t>(ids);
  std::vector<int64_t> targets(B * (T - 1), kIgnore);
  for (int64_t b = 0; b < B; ++b) {
    // Position t predicts ids[t + 1]; stop after the position that predicts the first EOT.
    for (int64_t t = 0; t + 1 < T; ++t) {
      targets[b * (T - 1) + t] = v[b * T + t + 1];
      if (v[b * T + t + 1] == eot_token_id) break;
    }
  }
  return from_data(targets, {B, T - 1}, ids.device());
}

Tensor caption_loss(const Tensor& logits, const Tensor& ids, int64_t eot_token_id) {
  if (logits.dim() != 3 || ids.dim() != 2 || logits.shape()[0] != ids.shape()[0] ||
      logits.shape()[1] != ids.shape()[1])
    fail("caption_loss", "expects logits [B, T, V] and ids [B, T]",
         {describe("logits", logits), describe("ids", ids)});
  const int64_t B = logits.shape()[0], T = logits.shape()[1], V = logits.shape()[2];
  Tensor targets = caption_targets(ids, eot_token_id);
  Tensor predicting = reshape(narrow(logits, 1, 0, T - 1), {B * (T - 1), V});
  return cross_entropy(predicting, reshape(targets, {-1}), kIgnore);
}

std::vector<int64_t> cyclic_negatives(int64_t batch) {
  if (batch < 2) fail("itm", "negatives need a batch of at least 2");
  std::vector<int64_t> out(batch);
  for (int64_t i = 0; i < batch; ++i) out[i] = (i + batch - 1) % batch;
  return out;
}

std::vector<int64_t> hard_negatives(const Tensor& similarity, Generator& gen, const std::vector<int64_t>& groups,
                                    int64_t first_row) {
  if (similarity.dim() != 2 || first_row < 0 || first_row + similarity.shape()[0] > similarity.shape()[1])
    fail("itm", "similarity must be rows [b, B] of the square [B, B] matrix, starting at row first_row",
         {describe("similarity", similarity)});
  const int64_t rows = similarity.shape()[0], B = similarity.shape()[1];
  if (B < 2) fail("itm", "negatives need a batch of at least 2");
  if (!groups.empty() && static_cast<int64_t>(groups.size()) != B)
    fail("itm", "one group id per sample is needed", {describe("similarity", similarity)});
  std::vector<double> sim = to_vector<double>(similarity);
  const uint64_t key = gen.next_key();
  std::vector<int64_t> out(rows);
  for (int64_t r = 0; r < rows; ++r) {
    const int64_t i = first_row + r;  // the global row
    const double* row = sim.data() + r * B;
    // softmax over the candidates, then the inverse CDF of one uniform draw. Candidates: every
    // j != i outside i's group (BLIP's mask of same-image pairs); every j != i when the whole
    // batch shares i's group.
    auto candidate = [&](int64_t j) { return j != i && (groups.empty() || groups[j] != groups[i]); };
    bool any = false;
    for (int64_t j = 0; j < B && !any; ++j) any = candidate(j);
    auto allowed = [&](int64_t j) { return any ? candidate(j) : j != i; };
    double mx = -INFINITY;
    for (int64_t j = 0; j < B; ++j)
      if (allowed(j)) mx = std::max(mx, row[j]);
    std::vector<double> w(B, 0.0);
    double total = 0;
    for (int64_t j = 0; j < B; ++j)
      if (allowed(j)) total += w[j] = std::exp(row[j] - mx);
    double u = Philox::uniform(key, static_cast<uint64_t>(i)) * total;
    int64_t pick = -1;
    for (int64_t j = 0; j < B; ++j) {
      if (!allowed(j)) continue;
      pick = j;
      if (u < w[j]) break;
      u -= w[j];
    }
    out[r] = pick;
  }
  return out;
}

Tensor itm_loss(const FusionTransformer& fusion, const Tensor& text_hidden, const Tensor& image_hidden,
                const std::vector<int64_t>& neg_image_for_text, const std::vector<int64_t>& neg_text_for_image,
                const Tensor& text_pool, const Tensor& image_pool) {
  const int64_t B = text_hidden.shape()[0];
  if (image_hidden.dim() < 1 || image_hidden.shape()[0] != B)
    fail("itm", "expects as many images as texts", {describe("text_hidden", text_hidden), describe("image_hidden", image_hidden)});
  if (static_cast<int64_t>(neg_image_for_text.size()) != B ||
      (!neg_text_for_image.empty() && static_cast<int64_t>(neg_text_for_image.size()) != B))
    fail("itm", "one negative per sample is needed", {describe("text_hidden", text_hidden)});
  // The pairs, positives first: (text b, image b), (text b, image neg_image_for_text[b]) and,
  // with text negatives, (text neg_text_for_image[b], image b). The fusion model is given the
  // distinct texts and images with an index per pair, so it projects each image once and runs
  // its first layer's self-attention once per text (on the gathered pairs that work was done
  // two or three times over). Negatives from the gathered pool (data parallel) are taken out
  // of it first and follow this rank's rows.
  auto index = [&](const std::vector<int64_t>& v) {
    return from_data(v, {static_cast<int64_t>(v.size())}, text_hidden.device());
  };
  auto distinct_rows = [&](const Tensor& own, const Tensor& pool, const std::vector<int64_t>& neg,
                           const char* what, std::vector<int64_t>& neg_row) {
    const int64_t n = pool.defined() ? pool.shape()[0] : B;
    for (int64_t j : neg)
      if (j < 0 || j >= n) fail("itm", fmt::format("negative {} index {} is out of range [0, {})", what, j, n));
    if (!pool.defined()) {
      neg_row = neg;
      return own;
    }
    for (int64_t b = 0; b < B; ++b) neg_row.push_back(B + b);
    return concat({own, index_select(pool, 0, index(neg))}, 0);
  };
  const bool text_negatives = !neg_text_for_image.empty();
  std::vector<int64_t> neg_image_row, neg_text_row;
  const Tensor images = distinct_rows(image_hidden, image_pool, neg_image_for_text, "image", neg_image_row);
  const Tensor texts = text_negatives ? distinct_rows(text_hidden, text_pool, neg_text_for_image, "text", neg_text_row)
                                      : text_hidden;
  std::vector<int64_t> text_of_pair, image_of_pair;
  for (int64_t b = 0; b < B; ++b) text_of_pair.push_back(b), image_of_pair.push_back(b);
  for (int64_t b = 0; b < B; ++b) text_of_pair.push_back(b), image_of_pair.push_back(neg_image_row[static_cast<size_t>(b)]);
  if (text_negatives)
    for (int64_t b = 0; b < B; ++b) text_of_pair.push_back(neg_text_row[static_cast<size_t>(b)]), image_of_pair.push_back(b);
  const int64_t pairs = static_cast<int64_t>(text_of_pair.size()) / B;
  const Tensor logits = fusion.itm_logits(fusion.forward(texts, images, index(image_of_pair), index(text_of_pair)));
  std::vector<int64_t> labels(pairs * B, 0);
  std::fill(labels.begin(), labels.begin() + B, 1);
  return cross_entropy(logits, from_data(labels, {pairs * B}, text_hidden.device()));
}

}  // namespace mmgrad::nn
