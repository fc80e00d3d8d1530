// The training objectives of ../shared/spec/MODELS.md, written with differentiable ops.
#pragma once
#include <cstdint>

#include <vector>

#include "core/rng.h"
#include "core/tensor.h"

namespace mmgrad::nn {

// x / ||x|| along the last dim: the embeddings the contrastive losses compare.
Tensor l2_normalize(const Tensor& x);

// CLIP InfoNCE. image, text [B, E] L2-normalised; logit_scale a scalar (the log of the
// temperature's inverse): logits = exp(logit_scale) I T^T, loss = (CE(logits, diag) +
// CE(logits^T, diag)) / 2.
Tensor clip_loss(const Tensor& image, const Tensor& text, const Tensor& logit_scale);

// CLIP InfoNCE over a global batch spread over ranks (OpenCLIP's local loss): this rank's
// rows image, text [b, E] against every rank's all_image, all_text [B, E] (gathered with
// gradient, dist/collective_ops.h); row i's positive is column first_row + i. The mean of
// this over the ranks equals clip_loss of the whole batch. With all_* = image, text and
// first_row = 0 it is clip_loss.
Tensor clip_loss_rows(const Tensor& image, const Tensor& text, const Tensor& all_image, const Tensor& all_text,
                      const Tensor& logit_scale, int64_t first_row);

// SigLIP: -(1/B) sum_ij log sigmoid(z_ij (exp(t') x_i . y_j + b)), z = +1 on the diagonal and
// -1 off it. t_prime and bias are scalars (init ln 10 and -10).
Tensor siglip_loss(const Tensor& image, const Tensor& text, const Tensor& t_prime, const Tensor& bias);
// SigLIP over a global batch: this rank's image rows [b, E] against all_text [B, E], the
// positive of row i at column first_row + i, divided by b: the mean over ranks equals
// siglip_loss of the whole batch.
Tensor siglip_loss_rows(const Tensor& image, const Tensor& all_text, const Tensor& t_prime, const Tensor& bias,
                        int64_t first_row);

// Next-token cross-entropy of a caption: logits [B, T, V] from positions 0..T-1, ids [B, T].
// Position t predicts ids[t+1]; the loss covers the positions up to and including the one
// that predicts the first end-of-text token; later positions (padding) are ignored.
Tensor caption_loss(const Tensor& logits, const Tensor& ids, int64_t eot_token_id);

// The caption targets [B, T-1] that caption_loss uses (-100 where ignored).
Tensor caption_targets(const Tensor& ids, int64_t eot_token_id);
// How many of them are not ignored (the count caption_loss averages over).
int64_t caption_target_count(const Tensor& ids, int64_t eot_token_id);

// ITM negatives: for each i an index j != i. Cyclic (the benchmark's): j = i - 1 mod B.
std::vector<int64_t> cyclic_negatives(int64_t batch);
Tensor cyclic_negatives(int64_t batch, Device device);  // the same as an I64 tensor made on `device`
// Hard negatives (ALBEF): row i of `similarity` [B, B] (temperature-scaled logits, as the
// contrastive loss sees them) gives the weights softmax(sim[i, j]) over j != i, from which j
// is drawn. Deterministic for a given generator state. `groups` (optional, one id per
// sample): samples of the same group are never each other's negatives, as BLIP masks pairs
// of the same image; data with many near-duplicates needs it, or the most similar "negative"
// is usually a true match and ITM learns contradictory labels.
// With several ranks, `similarity` is this rank's rows [b, B] of the global matrix, starting
// at global row first_row; groups then covers the global batch and the draws are those the
// whole matrix would give (row i uses the generator's draw for row first_row + i).
std::vector<int64_t> hard_negatives(const Tensor& similarity, Generator& gen, const std::vector<int64_t>& groups = {},
                                    int64_t first_row = 0);
// hard_negatives in two halves, for a step that must not read back to the host (a captured
// one): negative_draws takes the uniforms from `gen` on the host, one per row (row r's is
// Philox::uniform(key, first_row + r), one key per call), and uploads them; then
// sample_hard_negatives draws with tensor ops on the similarity's device: draws [b] (f64),
// groups [B] (integers) or undefined; the result is I64 [b].
Tensor negative_draws(Generator& gen, int64_t rows, int64_t first_row, Device device);
Tensor sample_hard_negatives(const Tensor& similarity, const Tensor& draws, const Tensor& groups, int64_t first_row);

class FusionTransformer;
// 2-way cross-entropy over B positive pairs (text i, image i) labelled 1 and the negative
// pairs (text i, image neg_image[i]) and, when given, (text neg_text[i], image i) labelled 0.
// text_hidden [B, T, Wt] (after final_layer_norm), image_hidden [B, N+1, Wv].
// The negatives index text_pool and image_pool (every rank's hidden states, gathered, in a
// data-parallel run); undefined pools mean this batch's own.
// The vector form checks the indices on the host; the tensor form (I64 or I32 [B]; an undefined
// neg_text_for_image means none) leaves that to the index kernels, reads nothing back and so
// may run inside a captured step.
Tensor itm_loss(const FusionTransformer& fusion, const Tensor& text_hidden, const Tensor& image_hidden,
                const std::vector<int64_t>& neg_image_for_text, const std::vector<int64_t>& neg_text_for_image = {},
                const Tensor& text_pool = Tensor(), const Tensor& image_pool = Tensor());
Tensor itm_loss(const FusionTransformer& fusion, const Tensor& text_hidden, const Tensor& image_hidden,
                const Tensor& neg_image_for_text, const Tensor& neg_text_for_image = Tensor(),
                const Tensor& text_pool = Tensor(), const Tensor& image_pool = Tensor());

}  // namespace mmgrad::nn
