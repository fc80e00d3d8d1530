#include "eval/shapes_eval.h"

#include <algorithm>
#include <cmath>
#include <sstream>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/json.h"
#include "data/shapes_batches.h"
#include "models/generate.h"
#include "models/losses.h"

namespace mmgrad::eval {
namespace {

constexpr int64_t kChunk = 250;  // samples per forward pass

Tensor rows(const Tensor& t, const std::vector<int64_t>& index) {
  return index_select(t, 0, from_data(index, {static_cast<int64_t>(index.size())}));
}

// Everything the metrics need from the towers, computed once, chunk by chunk.
struct TowerStates {
  Tensor image_hidden, text_hidden;  // [N, tokens, W]: the fusion's inputs
  Tensor image_emb, text_emb;        // [N, E] normalised
};

TowerStates run_towers(const nn::ClipModel& model, const Tensor& images, const Tensor& ids) {
  std::vector<Tensor> ih, th, ie, te;
  const int64_t N = images.shape()[0];
  for (int64_t a = 0; a < N; a += kChunk) {
    const int64_t n = std::min(kChunk, N - a);
    auto vis = model.vision_model.forward(narrow(images, 0, a, n));
    auto txt = model.text_model.forward(narrow(ids, 0, a, n));
    ih.push_back(vis.last_hidden_state);
    th.push_back(txt.last_hidden_state);
    ie.push_back(model.image_embedding(vis.pooled));
    te.push_back(model.text_embedding(txt.pooled));
  }
  return {concat(ih, 0), concat(th, 0), concat(ie, 0), concat(te, 0)};
}

// P(match) for the pairs (text text_index[k], image image_index[k]).
std::vector<double> match_probability(const nn::ClipModel& model, const TowerStates& towers,
                                      const std::vector<int64_t>& text_index, const std::vector<int64_t>& image_index) {
  std::vector<double> out;
  for (size_t a = 0; a < text_index.size(); a += kChunk) {
    const size_t b = std::min(text_index.size(), a + kChunk);
    const std::vector<int64_t> ti(text_index.begin() + static_cast<std::ptrdiff_t>(a), text_index.begin() + static_cast<std::ptrdiff_t>(b));
    const std::vector<int64_t> ii(image_index.begin() + static_cast<std::ptrdiff_t>(a), image_index.begin() + static_cast<std::ptrdiff_t>(b));
    const Tensor fused = model.fusion_model->forward(rows(towers.text_hidden, ti), rows(towers.image_hidden, ii));
    const Tensor p = select(softmax(model.fusion_model->itm_logits(fused), 1), 1, 1);
    for (double v : to_vector<double>(p)) out.push_back(v);
  }
  return out;
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w)
    if (w == word) return true;
  return false;
}

// Whether a generated caption names every object's colour and shape (any synonym).
bool caption_names_objects(const std::string& caption, const data::ShapesSample& s) {
  for (const auto& o : s.objects) {
    if (!has_word(caption, data::colour_names()[static_cast<size_t>(o.colour)])) return false;
    bool shape = false;
    for (const auto& w : data::shape_synonyms()[static_cast<size_t>(o.shape)]) shape = shape || has_word(caption, w);
    if (!shape) return false;
  }
  return true;
}

double logsumexp(const std::vector<double>& v) {
  const double m = *std::max_element(v.begin(), v.end());
  double s = 0;
  for (double x : v) s += std::exp(x - m);
  return m + std::log(s);
}

}  // namespace

ShapesEval evaluate_shapes(const nn::ClipModel& model, const data::Tokenizer& tokenizer, data::Split split,
                           int64_t count, uint64_t seed, int64_t caption_count, int64_t examples) {
  if (count < 2) fail("evaluate_shapes", "needs at least 2 samples");
  NoGradGuard no_grad;  // (the models have no dropout, so train/eval mode does not matter)
  ShapesEval e;
  e.split = split == data::Split::HeldOut ? "held-out" : "train";
  e.samples = count;
  const data::ShapesDataset ds(split, count, seed, model.config.image_size);
  std::vector<int64_t> all(static_cast<size_t>(count));
  for (int64_t i = 0; i < count; ++i) all[static_cast<size_t>(i)] = i;
  const std::vector<data::ShapesSample> samples = data::shapes_samples(ds, all);
  const data::ImageTextBatch batch = data::samples_batch(samples, tokenizer, model.config.context_length);
  const TowerStates towers = run_towers(model, batch.images, batch.ids);

  // Retrieval.
  const Tensor& img = towers.image_emb;
  const Tensor& txt = towers.text_emb;
  const Tensor sim = matmul(img, transpose(txt, 0, 1));  // [image, text]
  e.image_to_text = recall_at_k(sim);
  e.text_to_image = recall_at_k(transpose(sim, 0, 1));
  e.chance = chance_recall(count);

  // Zero-shot colour and shape.
  const int C = data::kNumColours, S = data::kNumShapes;
  // One embedding per (colour, shape) class: the normalised mean of its prompt ensemble.
  std::vector<Tensor> class_emb;
  for (int c = 0; c < C; ++c)
    for (int s = 0; s < S; ++s) {
      const Tensor e_prompts = model.encode_text(
          tokenizer.encode_batch(data::class_prompts(c, static_cast<data::ShapeKind>(s)), model.config.context_length));
      class_emb.push_back(nn::l2_normalize(mean(e_prompts, {0}, true)));
    }
  const Tensor prompt_emb = concat(class_emb, 0);  // [C * S, E]
  std::vector<int64_t> single;
  for (int64_t i = 0; i < count; ++i)
    if (samples[static_cast<size_t>(i)].objects.size() == 1) single.push_back(i);
  if (!single.empty()) {
    // Logits as in training (scaled by the learned temperature): the log-sum-exp over the
    // other attribute is then close to its best prompt, as a softmax classifier reads it.
    const std::vector<double> scores = to_vector<double>(
        mul(matmul(rows(img, single), transpose(prompt_emb, 0, 1)), std::exp(item(model.logit_scale))));
    int64_t colour_ok = 0, shape_ok = 0, pair_ok = 0;
    ShapesEval::PairShapes empty_cell;
    empty_cell.read_as.assign(static_cast<size_t>(S), 0);
    std::vector<ShapesEval::PairShapes> by_pair(static_cast<size_t>(C * S), empty_cell);
    for (size_t k = 0; k < single.size(); ++k) {
      const double* row = scores.data() + k * static_cast<size_t>(C * S);
      std::vector<double> colour_score(C), shape_score(S);
      for (int c = 0; c < C; ++c) colour_score[static_cast<size_t>(c)] = logsumexp(std::vector<double>(row + c * S, row + (c + 1) * S));
      for (int s = 0; s < S; ++s) {
        std::vector<double> col;
        for (int c = 0; c < C; ++c) col.push_back(row[c * S + s]);
        shape_score[static_cast<size_t>(s)] = logsumexp(col);
      }
      const auto& truth = samples[static_cast<size_t>(single[k])].objects[0];
      const auto best_colour = std::max_element(colour_score.begin(), colour_score.end()) - colour_score.begin();
      const auto best_shape = std::max_element(shape_score.begin(), shape_score.end()) - shape_score.begin();
      const auto best_pair = std::max_element(row, row + C * S) - row;
      colour_ok += best_colour == truth.colour;
      shape_ok += best_shape == static_cast<int>(truth.shape);
      pair_ok += best_pair == truth.colour * S + static_cast<int>(truth.shape);
      auto& cell = by_pair[static_cast<size_t>(truth.colour * S + static_cast<int>(truth.shape))];
      ++cell.images;
      cell.right += best_shape == static_cast<int>(truth.shape);
      ++cell.read_as[static_cast<size_t>(best_shape)];
    }
    e.zero_shot_samples = static_cast<int64_t>(single.size());
    const auto n = static_cast<double>(single.size());
    e.colour_accuracy = static_cast<double>(colour_ok) / n;
    e.shape_accuracy = static_cast<double>(shape_ok) / n;
    e.pair_accuracy = static_cast<double>(pair_ok) / n;
    for (int c = 0; c < C; ++c)
      for (int sh = 0; sh < S; ++sh) {
        ShapesEval::PairShapes& cell = by_pair[static_cast<size_t>(c * S + sh)];
        if (cell.images == 0) continue;
        cell.name = data::colour_names()[static_cast<size_t>(c)] + " " + data::shape_names()[static_cast<size_t>(sh)];
        cell.shape = sh;
        e.shape_by_pair.push_back(cell);
      }
  }

  // Image-text matching.
  if (model.fusion_model) {
    e.has_itm = true;
    const std::vector<double> sim_text_image = to_vector<double>(transpose(sim, 0, 1).contiguous());
    std::vector<int64_t> cyclic(static_cast<size_t>(count)), hard(static_cast<size_t>(count));
    for (int64_t i = 0; i < count; ++i) {
      cyclic[static_cast<size_t>(i)] = (i + count - 1) % count;
      int64_t best = -1;
      for (int64_t j = 0; j < count; ++j) {
        if (batch.groups[static_cast<size_t>(j)] == batch.groups[static_cast<size_t>(i)]) continue;
        if (best < 0 || sim_text_image[static_cast<size_t>(i * count + j)] > sim_text_image[static_cast<size_t>(i * count + best)])
          best = j;
      }
      hard[static_cast<size_t>(i)] = best < 0 ? cyclic[static_cast<size_t>(i)] : best;
    }
    const std::vector<double> pos = match_probability(model, towers, all, all);
    const std::vector<double> neg = match_probability(model, towers, all, cyclic);
    const std::vector<double> neg_hard = match_probability(model, towers, all, hard);
    int64_t ok = 0, ok_hard = 0;
    for (int64_t i = 0; i < count; ++i) {
      const bool p = pos[static_cast<size_t>(i)] > 0.5;
      // The previous sample may show the same objects; then it is not a negative.
      const bool same = batch.groups[static_cast<size_t>(cyclic[static_cast<size_t>(i)])] == batch.groups[static_cast<size_t>(i)];
      ok += p + (same ? neg[static_cast<size_t>(i)] > 0.5 : neg[static_cast<size_t>(i)] <= 0.5);
      ok_hard += p + (neg_hard[static_cast<size_t>(i)] <= 0.5);
    }
    e.itm_accuracy = static_cast<double>(ok) / static_cast<double>(2 * count);
    e.itm_hard_accuracy = static_cast<double>(ok_hard) / static_cast<double>(2 * count);
  }

  // Captions.
  if (model.caption_model && caption_count > 0) {
    e.has_captions = true;
    const int64_t n = std::min(caption_count, count);
    int64_t ok = 0;
    for (int64_t a = 0; a < n; a += kChunk) {
      const int64_t m = std::min(kChunk, n - a);
      const auto generated = nn::generate_captions(model, narrow(batch.images, 0, a, m), tokenizer.start_token(),
                                                   model.config.context_length);
      for (int64_t k = 0; k < m; ++k) {
        const std::string text = tokenizer.decode(generated[static_cast<size_t>(k)]);
        const auto& sample = samples[static_cast<size_t>(a + k)];
        ok += caption_names_objects(text, sample);
        if (a + k < examples) e.caption_examples.emplace_back(sample.caption, text);
      }
    }
    e.caption_samples = n;
    e.caption_accuracy = static_cast<double>(ok) / static_cast<double>(n);
  }
  return e;
}

std::string format_eval(const ShapesEval& e) {
  auto pct = [](double x) { return fmt::format("{:5.1f}%", 100 * x); };
  std::string s = fmt::format("evaluation on {} {} samples (chance in brackets)\n", e.samples, e.split);
  s += fmt::format("  image->text recall@1/5/10  {} {} {}   [{} {} {}]\n", pct(e.image_to_text.at1),
                   pct(e.image_to_text.at5), pct(e.image_to_text.at10), pct(e.chance.at1), pct(e.chance.at5),
                   pct(e.chance.at10));
  s += fmt::format("  text->image recall@1/5/10  {} {} {}   [{} {} {}]\n", pct(e.text_to_image.at1),
                   pct(e.text_to_image.at5), pct(e.text_to_image.at10), pct(e.chance.at1), pct(e.chance.at5),
                   pct(e.chance.at10));
  s += fmt::format("  zero-shot colour accuracy  {}   [{}]   ({} one-object images)\n", pct(e.colour_accuracy),
                   pct(1.0 / data::kNumColours), e.zero_shot_samples);
  s += fmt::format("  zero-shot shape accuracy   {}   [{}]\n", pct(e.shape_accuracy), pct(1.0 / data::kNumShapes));
  s += fmt::format("  zero-shot pair accuracy    {}   [{}]\n", pct(e.pair_accuracy),
                   pct(1.0 / (data::kNumColours * data::kNumShapes)));
  if (e.shape_by_pair.size() <= 4) {  // the held-out pairs: one line each
    for (const ShapesEval::PairShapes& cell : e.shape_by_pair) {
      // The wrong readings, most frequent first: "(else circle 20, diamond 7)".
      std::vector<int> wrong;
      for (int sh = 0; sh < data::kNumShapes; ++sh)
        if (sh != cell.shape && cell.read_as[static_cast<size_t>(sh)] > 0) wrong.push_back(sh);
      std::stable_sort(wrong.begin(), wrong.end(), [&](int a, int b) {
        return cell.read_as[static_cast<size_t>(a)] > cell.read_as[static_cast<size_t>(b)];
      });
      std::string also;
      for (int sh : wrong)
        also += fmt::format("{}{} {}", also.empty() ? "   (else " : ", ", data::shape_names()[static_cast<size_t>(sh)],
                            cell.read_as[static_cast<size_t>(sh)]);
      s += fmt::format("    shape right on {:<16} {:>3} of {} images{}\n", cell.name + ":", cell.right, cell.images,
                       also.empty() ? "" : also + ")");
    }
  }
  if (e.has_itm) {
    s += fmt::format("  ITM accuracy, random negatives  {}   [{}]\n", pct(e.itm_accuracy), pct(0.5));
    s += fmt::format("  ITM accuracy, hard negatives    {}   [{}]\n", pct(e.itm_hard_accuracy), pct(0.5));
  }
  if (e.has_captions) {
    s += fmt::format("  captions naming every object's colour and shape  {}   ({} images)\n", pct(e.caption_accuracy),
                     e.caption_samples);
    for (const auto& [ref, gen] : e.caption_examples)
      s += fmt::format("    reference: {:<46} generated: {}\n", ref, gen);
  }
  return s;
}

std::string eval_json(const ShapesEval& e) {
  std::string s = fmt::format(
      "{{\"split\": {}, \"samples\": {}, \"image_to_text\": [{}, {}, {}], \"text_to_image\": [{}, {}, {}], "
      "\"chance_recall\": [{}, {}, {}], \"zero_shot_samples\": {}, \"colour_accuracy\": {}, \"shape_accuracy\": {}, "
      "\"pair_accuracy\": {}",
      json::quote(e.split), e.samples, e.image_to_text.at1, e.image_to_text.at5, e.image_to_text.at10,
      e.text_to_image.at1, e.text_to_image.at5, e.text_to_image.at10, e.chance.at1, e.chance.at5, e.chance.at10,
      e.zero_shot_samples, e.colour_accuracy, e.shape_accuracy, e.pair_accuracy);
  if (e.has_itm) s += fmt::format(", \"itm_accuracy\": {}, \"itm_hard_accuracy\": {}", e.itm_accuracy, e.itm_hard_accuracy);
  if (e.has_captions) {
    s += fmt::format(", \"caption_accuracy\": {}, \"caption_examples\": [", e.caption_accuracy);
    for (size_t i = 0; i < e.caption_examples.size(); ++i)
      s += fmt::format("{}[{}, {}]", i ? ", " : "", json::quote(e.caption_examples[i].first),
                       json::quote(e.caption_examples[i].second));
    s += "]";
  }
  return s + "}";
}

}  // namespace mmgrad::eval
