#include "eval/table_eval.h"

#include <algorithm>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/json.h"
#include "core/parallel.h"
#include "data/loader.h"
#include "eval/embedding.h"
#include "models/generate.h"
#include "models/losses.h"

namespace mmgrad::eval {
namespace {

// Which rows to evaluate: all, or `max` evenly spaced ones (a table is often sorted by class).
std::vector<int64_t> pick_rows(int64_t n, int64_t max) {
  std::vector<int64_t> out;
  const int64_t m = std::min(n, max);
  for (int64_t i = 0; i < m; ++i) out.push_back(i * n / m);
  return out;
}

Tensor load_images(const data::CaptionTable& table, const std::vector<int64_t>& rows, const ImageEvalSettings& s) {
  const int64_t S = s.preprocess.image_size, n = static_cast<int64_t>(rows.size());
  std::vector<float> pixels(static_cast<size_t>(n * 3 * S * S));
  parallel_for(0, n, 4, [&](int64_t a, int64_t b) {
    for (int64_t i = a; i < b; ++i)
      data::load_row(table, rows[static_cast<size_t>(i)], s.preprocess, s.decode, false, 0,
                     pixels.data() + i * 3 * S * S);
  });
  return from_data(pixels, {n, 3, S, S});
}

std::string pct(double x) { return fmt::format("{:5.1f}%", 100 * x); }

}  // namespace

TableEval evaluate_table(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const data::CaptionTable& table,
                         const ImageEvalSettings& settings) {
  NoGradGuard no_grad;
  const std::vector<int64_t> rows = pick_rows(static_cast<int64_t>(table.rows.size()), settings.max_samples);
  if (rows.size() < 2) fail("evaluate_table", "'" + table.path + "' needs at least 2 rows to rank");
  const std::vector<int64_t> all_groups = data::match_groups(table);
  std::vector<int64_t> groups;
  std::vector<std::string> captions;
  for (int64_t r : rows) {
    groups.push_back(all_groups[static_cast<size_t>(r)]);
    captions.push_back(table.rows[static_cast<size_t>(r)].caption);
  }
  const Tensor images = load_images(table, rows, settings);
  const Tensor img = embed_images(model, images), txt = embed_texts(model, tokenizer, captions);
  const Tensor sim = matmul(img, transpose(txt, 0, 1));
  TableEval e;
  e.source = table.path;
  e.samples = static_cast<int64_t>(rows.size());
  e.image_to_text = recall_at_k_grouped(sim, groups, groups, &e.chance_image_to_text);
  e.text_to_image = recall_at_k_grouped(transpose(sim, 0, 1).contiguous(), groups, groups, &e.chance_text_to_image);
  if (model.caption_model && settings.caption_examples > 0) {
    const int64_t n = std::min<int64_t>(settings.caption_examples, e.samples);
    const auto generated = caption_images(model, tokenizer, narrow(images, 0, 0, n));
    for (int64_t k = 0; k < n; ++k)
      e.caption_examples.emplace_back(captions[static_cast<size_t>(k)], generated[static_cast<size_t>(k)]);
  }
  return e;
}

std::vector<std::string> prompt_templates(const std::string& spec) {
  if (spec.empty())
    return {"a photo of a {}.", "a picture of a {}.", "an image of a {}.", "a {}.", "a drawing of a {}.",
            "a photo of the {}."};
  std::vector<std::string> out;
  size_t start = 0;
  while (start <= spec.size()) {
    const size_t bar = std::min(spec.find('|', start), spec.size());
    const std::string t = spec.substr(start, bar - start);
    if (t.find("{}") == std::string::npos)
      fail("prompts", "template '" + t + "' has no {} where the class name goes");
    out.push_back(t);
    start = bar + 1;
  }
  return out;
}

ZeroShotEval evaluate_zero_shot(const nn::ClipModel& model, const data::Tokenizer& tokenizer,
                                const data::ClassFolder& folder, const std::vector<std::string>& templates,
                                const ImageEvalSettings& settings) {
  NoGradGuard no_grad;
  const int64_t C = static_cast<int64_t>(folder.class_names.size());
  const Tensor class_emb = class_embeddings(model, tokenizer, folder.class_names, templates);  // [C, E]
  data::CaptionTable table;
  table.path = folder.root;
  for (size_t i = 0; i < folder.image_paths.size(); ++i)
    table.rows.push_back({folder.image_paths[i], folder.class_names[static_cast<size_t>(folder.labels[i])], 0});
  const std::vector<int64_t> rows = pick_rows(static_cast<int64_t>(table.rows.size()), settings.max_samples);
  const Tensor img = embed_images(model, load_images(table, rows, settings));
  const std::vector<double> scores = to_vector<double>(matmul(img, transpose(class_emb, 0, 1)));
  ZeroShotEval e;
  e.source = folder.root;
  e.samples = static_cast<int64_t>(rows.size());
  e.templates = static_cast<int64_t>(templates.size());
  e.chance = 1.0 / static_cast<double>(C);
  std::vector<int64_t> right(static_cast<size_t>(C)), seen(static_cast<size_t>(C));
  for (size_t k = 0; k < rows.size(); ++k) {
    const double* row = scores.data() + k * static_cast<size_t>(C);
    const int64_t truth = folder.labels[static_cast<size_t>(rows[k])];
    int64_t higher = 0;
    for (int64_t c = 0; c < C; ++c) higher += row[c] > row[truth];
    e.top1 += higher < 1;
    e.top5 += higher < 5;
    ++seen[static_cast<size_t>(truth)];
    right[static_cast<size_t>(truth)] += higher < 1;
  }
  e.top1 /= static_cast<double>(e.samples);
  e.top5 /= static_cast<double>(e.samples);
  for (int64_t c = 0; c < C; ++c)
    if (seen[static_cast<size_t>(c)] > 0)
      e.per_class.emplace_back(folder.class_names[static_cast<size_t>(c)],
                               static_cast<double>(right[static_cast<size_t>(c)]) / static_cast<double>(seen[static_cast<size_t>(c)]));
  return e;
}

std::string format_table_eval(const TableEval& e) {
  std::string s = fmt::format("retrieval on {} rows of {} (chance in brackets)\n", e.samples, e.source);
  s += fmt::format("  image->text recall@1/5/10  {} {} {}   [{} {} {}]\n", pct(e.image_to_text.at1), pct(e.image_to_text.at5),
                   pct(e.image_to_text.at10), pct(e.chance_image_to_text.at1), pct(e.chance_image_to_text.at5),
                   pct(e.chance_image_to_text.at10));
  s += fmt::format("  text->image recall@1/5/10  {} {} {}   [{} {} {}]\n", pct(e.text_to_image.at1), pct(e.text_to_image.at5),
                   pct(e.text_to_image.at10), pct(e.chance_text_to_image.at1), pct(e.chance_text_to_image.at5),
                   pct(e.chance_text_to_image.at10));
  for (const auto& [ref, gen] : e.caption_examples) s += fmt::format("    reference: {:<46} generated: {}\n", ref, gen);
  return s;
}

std::string format_zero_shot(const ZeroShotEval& e) {
  std::string s = fmt::format("zero-shot classification of {} images of {} ({} classes, {} prompt templates)\n", e.samples,
                              e.source, e.per_class.size(), e.templates);
  s += fmt::format("  top-1 accuracy  {}   [{}]\n  top-5 accuracy  {}   [{}]\n", pct(e.top1), pct(e.chance), pct(e.top5),
                   pct(std::min(1.0, 5 * e.chance)));
  if (e.per_class.size() <= 20) {
    s += "  per class:";
    for (const auto& [name, acc] : e.per_class) s += fmt::format(" {} {:.0f}%", name, 100 * acc);
    s += "\n";
  }
  return s;
}

std::string table_eval_json(const TableEval& e) {
  std::string s = fmt::format(
      "{{\"source\": {}, \"samples\": {}, \"image_to_text\": [{}, {}, {}], \"text_to_image\": [{}, {}, {}], "
      "\"chance_image_to_text\": [{}, {}, {}], \"chance_text_to_image\": [{}, {}, {}], \"caption_examples\": [",
      json::quote(e.source), e.samples, e.image_to_text.at1, e.image_to_text.at5, e.image_to_text.at10,
      e.text_to_image.at1, e.text_to_image.at5, e.text_to_image.at10, e.chance_image_to_text.at1,
      e.chance_image_to_text.at5, e.chance_image_to_text.at10, e.chance_text_to_image.at1, e.chance_text_to_image.at5,
      e.chance_text_to_image.at10);
  for (size_t i = 0; i < e.caption_examples.size(); ++i)
    s += fmt::format("{}[{}, {}]", i ? ", " : "", json::quote(e.caption_examples[i].first), json::quote(e.caption_examples[i].second));
  return s + "]}";
}

std::string zero_shot_json(const ZeroShotEval& e) {
  std::string s = fmt::format("{{\"source\": {}, \"samples\": {}, \"templates\": {}, \"top1\": {}, \"top5\": {}, \"chance\": {}, \"per_class\": {{",
                              json::quote(e.source), e.samples, e.templates, e.top1, e.top5, e.chance);
  for (size_t i = 0; i < e.per_class.size(); ++i)
    s += fmt::format("{}{}: {}", i ? ", " : "", json::quote(e.per_class[i].first), e.per_class[i].second);
  return s + "}}";
}

}  // namespace mmgrad::eval
