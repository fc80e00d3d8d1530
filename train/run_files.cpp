#include "train/run_files.h"

#include <array>
#include <filesystem>
#include <stdexcept>

#include <fmt/format.h>

#include "core/error.h"
#include "data/bpe.h"
#include "data/clip_bpe.h"

namespace mmgrad::train {
namespace fs = std::filesystem;
namespace {

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

std::string run_tokenizer_path(const RunConfig& c, const std::string& run_dir) {
  if (c.tokenizer == "train") return run_dir + "/tokenizer.bpe";
  return run_dir + (fs::path(c.tokenizer).extension() == ".json" ? "/tokenizer.json" : "/tokenizer_merges.txt");
}

std::unique_ptr<data::Tokenizer> load_tokenizer_file(const std::string& path, bool trained_bpe) {
  if (trained_bpe) return std::make_unique<data::BpeTokenizer>(data::BpeTokenizer::load(path));
  return data::load_pretrained_tokenizer(path);
}

data::CaptionTableOptions table_options(const RunConfig& c) {
  data::CaptionTableOptions o;
  o.separator = c.table_separator == "comma" ? ',' : '\t';
  o.image_column = c.image_column;
  o.caption_column = c.caption_column;
  return o;
}

data::Preprocess preprocess_from_config(const RunConfig& c) {
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

data::DecodeOptions decode_options(const RunConfig& c) {
  data::DecodeOptions d;
  const uint8_t v = c.background == "black" ? 0 : 255;
  d.background = {v, v, v};
  return d;
}

std::unique_ptr<data::Tokenizer> load_run_tokenizer(const RunConfig& c, const std::string& run_dir) {
  const std::string path = run_tokenizer_path(c, run_dir);
  auto tok = load_tokenizer_file(path, c.tokenizer == "train");
  if (tok->vocab_size() != c.model.vocab_size)
    fail("mmgrad", fmt::format("'{}' has {} tokens but the checkpoint's model has {}", path, tok->vocab_size(),
                               c.model.vocab_size));
  return tok;
}

}  // namespace mmgrad::train
