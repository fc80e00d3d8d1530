#include "models/losses.h"

#include <algorithm>
#include <cmath>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
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
  return static_cast<int64_t>(item(sum(ne(caption_targets(ids, eot_token_id), static_cast<double>(kIgnore)).to(DType::I64))));
}

Tensor caption_targets(const Tensor& ids, int64_t eot_token_id) {
  if (ids.dim() != 2 || ids.shape()[1] < 2)
    fail("caption_loss", "expects token ids [B, T] with T >= 2", {describe("ids", ids)});
  const int64_t T = ids.shape()[1];
  // Position t predicts ids[t + 1]; the positions after the one that predicts the first EOT
  // are ignored. Computed with tensor ops where the ids live (no read back to the host).
  NoGradGuard no_grad;
  Tensor next = narrow(ids.to(DType::I64), 1, 1, T - 1);
  Tensor is_eot = eq(next, static_cast<double>(eot_token_id)).to(DType::I32);
  Tensor first_eot = argmax(is_eot, 1);  // the first maximum: the first EOT, or 0 when none
  Tensor last_kept = where(gt(amax(is_eot, {1}), 0.0), first_eot, static_cast<double>(T - 1));
  Tensor position = unsqueeze(arange(0, static_cast<double>(T - 1), 1, DType::I64, ids.device()), 0);
  return where(le(position, unsqueeze(last_kept, 1)), next, static_cast<double>(kIgnore));
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

Tensor cyclic_negatives(int64_t batch, Device device) {
  if (batch < 2) fail("itm", "negatives need a batch of at least 2");
  const Tensor i = arange(0, static_cast<double>(batch), 1, DType::I64, device);
  return where(gt(i, 0.0), sub(i, 1.0), static_cast<double>(batch - 1));
}

std::vector<int64_t> cyclic_negatives(int64_t batch) { return to_vector<int64_t>(cyclic_negatives(batch, Device::cpu())); }

Tensor negative_draws(Generator& gen, int64_t rows, int64_t first_row, Device device) {
  const uint64_t key = gen.next_key();
  std::vector<double> u(static_cast<size_t>(rows));
  for (int64_t r = 0; r < rows; ++r) u[static_cast<size_t>(r)] = Philox::uniform(key, static_cast<uint64_t>(first_row + r));
  return from_data(u, {rows}, device);
}

namespace {
void check_similarity_rows(const Tensor& similarity, int64_t first_row) {
  if (similarity.dim() != 2 || first_row < 0 || first_row + similarity.shape()[0] > similarity.shape()[1])
    fail("itm", "similarity must be rows [b, B] of the square [B, B] matrix, starting at row first_row",
         {describe("similarity", similarity)});
  if (similarity.shape()[1] < 2) fail("itm", "negatives need a batch of at least 2");
}

// Running sums along each row of w [rows, B] (f64): cdf[i, j] = sum_{k <= j} w[i, k], with
// tensor ops only. The row is cut into chunks of about sqrt(B): sums within each chunk by one
// product with a k x k triangle of ones, then the chunks' totals summed the same way and
// added as offsets, so the work is O(rows B sqrt(B)), not the O(rows B^2) of one B x B
// triangle (a large global batch in a data-parallel run would feel that).
Tensor running_sums(const Tensor& w) {
  const int64_t rows = w.shape()[0], B = w.shape()[1];
  const Device device = w.device();
  const int64_t k = std::max<int64_t>(1, static_cast<int64_t>(std::ceil(std::sqrt(static_cast<double>(B)))));
  const int64_t chunks = (B + k - 1) / k;
  auto triangle = [&](int64_t n, bool strict) {  // [n, n]: 1 where row <= column (strict: <)
    const Tensor i = arange(0, static_cast<double>(n), 1, DType::F64, device);
    const Tensor r = unsqueeze(i, 1), c = unsqueeze(i, 0);
    return (strict ? lt(r, c) : le(r, c)).to(DType::F64);
  };
  Tensor padded = chunks * k == B ? w : concat({w, zeros({rows, chunks * k - B}, DType::F64, device)}, 1);
  Tensor by_chunk = reshape(padded, {rows, chunks, k});
  Tensor within = matmul(by_chunk, triangle(k, false));                       // [rows, chunks, k]
  Tensor before = matmul(sum(by_chunk, {2}), triangle(chunks, true));         // [rows, chunks]
  return narrow(reshape(add(within, unsqueeze(before, 2)), {rows, chunks * k}), 1, 0, B);
}
}  // namespace

Tensor sample_hard_negatives(const Tensor& similarity, const Tensor& draws, const Tensor& groups, int64_t first_row) {
  check_similarity_rows(similarity, first_row);
  const int64_t rows = similarity.shape()[0], B = similarity.shape()[1];
  if (groups.defined() && (groups.dim() != 1 || groups.shape()[0] != B))
    fail("itm", "one group id per sample is needed", {describe("similarity", similarity), describe("groups", groups)});
  if (draws.dim() != 1 || draws.shape()[0] != rows)
    fail("itm", "one draw per similarity row is needed", {describe("similarity", similarity), describe("draws", draws)});
  // Tensor ops on the similarity's device, nothing read back: the softmax over the
  // candidates, then the inverse CDF of the row's draw. Candidates: every j != i outside i's
  // group (BLIP's mask of same-image pairs); every j != i when the whole batch shares i's group.
  NoGradGuard no_grad;
  const Device device = similarity.device();
  const Tensor sim = similarity.to(DType::F64);
  const Tensor column = unsqueeze(arange(0, static_cast<double>(B), 1, DType::F64, device), 0);  // [1, B]
  const Tensor row = unsqueeze(arange(static_cast<double>(first_row), static_cast<double>(first_row + rows), 1,
                                      DType::F64, device), 1);                                   // [rows, 1]
  Tensor allowed = ne(row, column).to(DType::F64);                                               // j != i
  if (groups.defined()) {
    const Tensor g = groups.to(DType::F64);
    const Tensor row_group = unsqueeze(narrow(g, 0, first_row, rows), 1);
    const Tensor candidate = mul(allowed, ne(row_group, unsqueeze(g, 0)).to(DType::F64));
    allowed = where(gt(amax(candidate, {1}, true), 0.0), candidate, allowed);
  }
  const Tensor is_allowed = gt(allowed, 0.0);
  const Tensor top = amax(where(is_allowed, sim, -INFINITY), {1}, true);
  const Tensor weight = where(is_allowed, exp(sub(sim, top)), 0.0);
  const Tensor cdf = running_sums(weight);
  const Tensor target = mul(unsqueeze(draws.to(DType::F64), 1), narrow(cdf, 1, B - 1, 1));
  // The first allowed j whose running sum exceeds the target (as the sequential draw picks);
  // when rounding leaves none (or the row is NaN), the last allowed j. Masking by `allowed`
  // keeps a disallowed j out whatever the sums' rounding.
  const Tensor above = mul(gt(cdf, target).to(DType::F64), allowed);
  const Tensor first_above = argmax(above, 1).to(DType::F64);
  const Tensor last_allowed = amax(where(is_allowed, column, -1.0), {1});
  return where(gt(amax(above, {1}), 0.0), first_above, last_allowed).to(DType::I64);
}

std::vector<int64_t> hard_negatives(const Tensor& similarity, Generator& gen, const std::vector<int64_t>& groups,
                                    int64_t first_row) {
  check_similarity_rows(similarity, first_row);  // before a draw is taken from gen
  if (!groups.empty() && static_cast<int64_t>(groups.size()) != similarity.shape()[1])
    fail("itm", "one group id per sample is needed", {describe("similarity", similarity)});
  const Device device = similarity.device();
  const Tensor group_ids = groups.empty() ? Tensor() : from_data(groups, {static_cast<int64_t>(groups.size())}, device);
  const Tensor draws = negative_draws(gen, similarity.shape()[0], first_row, device);
  return to_vector<int64_t>(sample_hard_negatives(similarity, draws, group_ids, first_row));
}

Tensor itm_loss(const FusionTransformer& fusion, const Tensor& text_hidden, const Tensor& image_hidden,
                const Tensor& neg_image_for_text, const Tensor& neg_text_for_image, const Tensor& text_pool,
                const Tensor& image_pool) {
  const int64_t B = text_hidden.shape()[0];
  if (image_hidden.dim() < 1 || image_hidden.shape()[0] != B)
    fail("itm", "expects as many images as texts", {describe("text_hidden", text_hidden), describe("image_hidden", image_hidden)});
  auto one_per_sample = [&](const Tensor& neg) {
    if (neg.dim() != 1 || neg.shape()[0] != B || (neg.dtype() != DType::I64 && neg.dtype() != DType::I32))
      fail("itm", "one negative index per sample is needed", {describe("text_hidden", text_hidden), describe("negatives", neg)});
  };
  one_per_sample(neg_image_for_text);
  const bool text_negatives = neg_text_for_image.defined();
  if (text_negatives) one_per_sample(neg_text_for_image);
  // The pairs, positives first: (text b, image b), (text b, image neg_image_for_text[b]) and,
  // with text negatives, (text neg_text_for_image[b], image b). The fusion model is given the
  // distinct texts and images with an index per pair, so it projects each image once and runs
  // its first layer's self-attention once per text (on the gathered pairs that work was done
  // two or three times over). Negatives from the gathered pool (data parallel) are taken out
  // of it first and follow this rank's rows. Index tensors only: nothing is read back, so the
  // loss may run inside a captured step (the index kernels check the ranges).
  const Device device = text_hidden.device();
  const Tensor own = arange(0, static_cast<double>(B), 1, DType::I64, device);
  const Tensor after_own = arange(static_cast<double>(B), static_cast<double>(2 * B), 1, DType::I64, device);
  auto distinct_rows = [&](const Tensor& rows, const Tensor& pool, const Tensor& neg, Tensor& neg_row) {
    if (!pool.defined()) {
      neg_row = neg.to(DType::I64);
      return rows;
    }
    neg_row = after_own;
    return concat({rows, index_select(pool, 0, neg.to(DType::I64))}, 0);
  };
  Tensor neg_image_row, neg_text_row;
  const Tensor images = distinct_rows(image_hidden, image_pool, neg_image_for_text, neg_image_row);
  const Tensor texts = text_negatives ? distinct_rows(text_hidden, text_pool, neg_text_for_image, neg_text_row)
                                      : text_hidden;
  std::vector<Tensor> text_of_pair{own, own}, image_of_pair{own, neg_image_row};
  if (text_negatives) text_of_pair.push_back(neg_text_row), image_of_pair.push_back(own);
  const int64_t pairs = static_cast<int64_t>(text_of_pair.size());
  const Tensor logits = fusion.itm_logits(fusion.forward(texts, images, concat(image_of_pair, 0), concat(text_of_pair, 0)));
  const Tensor labels = concat({ones({B}, DType::I64, device), zeros({(pairs - 1) * B}, DType::I64, device)}, 0);
  return cross_entropy(logits, labels);
}

Tensor itm_loss(const FusionTransformer& fusion, const Tensor& text_hidden, const Tensor& image_hidden,
                const std::vector<int64_t>& neg_image_for_text, const std::vector<int64_t>& neg_text_for_image,
                const Tensor& text_pool, const Tensor& image_pool) {
  const int64_t B = text_hidden.shape()[0];
  if (static_cast<int64_t>(neg_image_for_text.size()) != B ||
      (!neg_text_for_image.empty() && static_cast<int64_t>(neg_text_for_image.size()) != B))
    fail("itm", "one negative per sample is needed", {describe("text_hidden", text_hidden)});
  auto index = [&](const std::vector<int64_t>& neg, const Tensor& pool, const char* what) {
    const int64_t n = pool.defined() ? pool.shape()[0] : B;
    for (int64_t j : neg)
      if (j < 0 || j >= n) fail("itm", fmt::format("negative {} index {} is out of range [0, {})", what, j, n));
    return from_data(neg, {B}, text_hidden.device());
  };
  return itm_loss(fusion, text_hidden, image_hidden, index(neg_image_for_text, image_pool, "image"),
                  neg_text_for_image.empty() ? Tensor() : index(neg_text_for_image, text_pool, "text"), text_pool,
                  image_pool);
}

}  // namespace mmgrad::nn
