#include "apps/real_data.h"

#include <array>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "core/atomic_file.h"
#include "core/error.h"
#include "data/bpe.h"
#include "data/clip_bpe.h"
#include "eval/table_eval.h"

namespace mmgrad::apps {
namespace fs = std::filesystem;
namespace {

// Where the run folder keeps its tokenizer: our BPE's own format, or the pretrained file
// copied in (so that the run does not depend on the original staying where it was).
std::string run_tokenizer_path(const train::RunConfig& c, const std::string& run_dir) {
  if (c.tokenizer == "train") return run_dir + "/tokenizer.bpe";
  return run_dir + (fs::path(c.tokenizer).extension() == ".json" ? "/tokenizer.json" : "/tokenizer_merges.txt");
}

std::unique_ptr<data::Tokenizer> load_tokenizer_file(const std::string& path, bool trained_bpe) {
  if (trained_bpe) return std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::load(path));
  return data::load_pretrained_tokenizer(path);
}

// "0.48,0.45,0.40" -> three floats; anything else names the key.
std::array<float, 3> three_numbers(const std::string& text, const char* key) {
  std::array<float, 3> out{};
  size_t start = 0;
  for (int i = 0; i < 3; ++i) {
    const size_t comma = i < 2 ? text.find(',', start) : text.size();
    try {
      size_t used = 0;
      const std::string part = text.substr(start, comma - start);
      out[static_cast<size_t>(i)] = std::stof(part, &used);
      if (used != part.size() || comma == std::string::npos) throw std::invalid_argument(part);
    } catch (const std::exception&) {
      fail("config", fmt::format("{} '{}' is not three comma-separated numbers (e.g. 0.5,0.5,0.5)", key, text));
    }
    start = comma + 1;
  }
  return out;
}

}  // namespace

data::CaptionTableOptions table_options(const train::RunConfig& c) {
  data::CaptionTableOptions o;
  o.separator = c.table_separator == "comma" ? ',' : '\t';
  o.image_column = c.image_column;
  o.caption_column = c.caption_column;
  return o;
}

data::Preprocess preprocess_from_config(const train::RunConfig& c) {
  data::Preprocess p = c.normalize == "clip" ? data::clip_preprocess(c.model.image_size)
                                             : data::plain_preprocess(c.model.image_size);
  // The shapes dataset feeds [0, 1] pixels: a shapes model sees real images the same way.
  if (c.normalize == "none" || c.dataset == "shapes") p.mean = {0, 0, 0}, p.std = {1, 1, 1};
  if (c.normalize == "custom" && c.dataset != "shapes") {
    p.mean = three_numbers(c.image_mean, "image_mean");
    p.std = three_numbers(c.image_std, "image_std");
  }
  p.interpolation = c.interpolation == "bilinear" ? data::Interpolation::Bilinear : data::Interpolation::Bicubic;
  p.crop_scale_min = static_cast<float>(c.crop_scale_min);
  p.crop_scale_max = 1.0f;
  p.jitter_brightness = p.jitter_contrast = p.jitter_saturation = static_cast<float>(c.jitter);
  p.hflip = c.hflip;
  data::validate_preprocess(p);
  return p;
}

data::DecodeOptions decode_options(const train::RunConfig& c) {
  data::DecodeOptions d;
  const uint8_t v = c.background == "black" ? 0 : 255;
  d.background = {v, v, v};
  return d;
}

std::unique_ptr<data::Tokenizer> make_tokenizer(train::RunConfig& c, const std::string& run_dir,
                                                const std::vector<std::string>& captions, bool save) {
  std::unique_ptr<data::Tokenizer> tok;
  const std::string dest = run_tokenizer_path(c, run_dir);
  if (c.tokenizer == "train") {
    auto bpe = std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::train(captions, c.tokenizer_vocab));
    if (save) bpe->save(dest);
    tok = std::move(bpe);
  } else {
    tok = data::load_pretrained_tokenizer(c.tokenizer);  // fails here, naming the file, if it is unusable
    if (save && fs::absolute(c.tokenizer) != fs::absolute(dest)) fs::copy_file(c.tokenizer, dest, fs::copy_options::overwrite_existing);
  }
  c.model.vocab_size = tok->vocab_size();
  c.model.eot_token_id = tok->end_token();
  warn_truncated_captions(*tok, captions, c.model.context_length);
  return tok;
}

void warn_truncated_captions(const data::Tokenizer& tok, const std::vector<std::string>& captions,
                             int64_t context_length) {
  // Truncated captions lose words (often the second object); say so rather than train on them.
  int64_t longest = 0, truncated = 0;
  const size_t checked = std::min<size_t>(captions.size(), 5000);
  for (size_t i = 0; i < checked; ++i) {
    const auto n = static_cast<int64_t>(tok.encode(captions[i]).size());
    longest = std::max(longest, n);
    truncated += n + 2 > context_length;
  }
  if (truncated > 0)
    fmt::print(stderr,
               "warning: {} of the first {} captions are longer than context_length {} allows (the longest has {} "
               "tokens plus start and end); they are truncated. Raise context_length or tokenizer_vocab.\n",
               truncated, checked, context_length, longest);
}

std::unique_ptr<data::Tokenizer> load_run_tokenizer(const train::RunConfig& c, const std::string& run_dir) {
  const std::string path = run_tokenizer_path(c, run_dir);
  auto tok = load_tokenizer_file(path, c.tokenizer == "train");
  if (tok->vocab_size() != c.model.vocab_size)
    fail("mmgrad", fmt::format("'{}' has {} tokens but the checkpoint's model has {}", path, tok->vocab_size(),
                               c.model.vocab_size));
  return tok;
}

void evaluate_data(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const train::RunConfig& c,
                   const std::string& path, int64_t max_samples, const std::string& json_path) {
  eval::ImageEvalSettings s;
  s.preprocess = preprocess_from_config(c);
  s.decode = decode_options(c);
  s.max_samples = max_samples;
  std::string json;
  if (fs::is_directory(path)) {
    const fs::path names = fs::path(path).parent_path() / "classes.txt";
    const data::ClassFolder folder = data::read_class_folder(path, fs::exists(names) ? names.string() : "");
    const eval::ZeroShotEval e = eval::evaluate_zero_shot(model, tokenizer, folder, eval::prompt_templates(c.prompts), s);
    fmt::print("{}", eval::format_zero_shot(e));
    json = eval::zero_shot_json(e);
  } else {
    const eval::TableEval e = eval::evaluate_table(model, tokenizer, data::read_caption_table(path, table_options(c)), s);
    fmt::print("{}", eval::format_table_eval(e));
    json = eval::table_eval_json(e);
  }
  if (!json_path.empty()) {
    write_file_atomically(json_path, "eval", [&](std::ostream& out) { out << json << "\n"; });
    fmt::print("figures written to {}\n", json_path);
  }
}

}  // namespace mmgrad::apps
