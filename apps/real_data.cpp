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
#include "train/run_files.h"

namespace mmgrad::apps {
namespace fs = std::filesystem;
using train::decode_options;
using train::preprocess_from_config;
using train::run_tokenizer_path;
using train::table_options;

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

EvalOutput evaluate_data(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const train::RunConfig& c,
                   const std::string& path, int64_t max_samples, const std::string& json_path) {
  eval::ImageEvalSettings s;
  s.preprocess = preprocess_from_config(c);
  s.decode = decode_options(c);
  s.max_samples = max_samples;
  std::string json, text;
  if (fs::is_directory(path)) {
    const fs::path names = fs::path(path).parent_path() / "classes.txt";
    const data::ClassFolder folder = data::read_class_folder(path, fs::exists(names) ? names.string() : "");
    const eval::ZeroShotEval e = eval::evaluate_zero_shot(model, tokenizer, folder, eval::prompt_templates(c.prompts), s);
    text = eval::format_zero_shot(e);
    json = eval::zero_shot_json(e);
  } else {
    const eval::TableEval e = eval::evaluate_table(model, tokenizer, data::read_caption_table(path, table_options(c)), s);
    text = eval::format_table_eval(e);
    json = eval::table_eval_json(e);
  }
  fmt::print("{}", text);
  if (!json_path.empty()) {
    write_file_atomically(json_path, "eval", [&](std::ostream& out) { out << json << "\n"; });
    fmt::print("figures written to {}\n", json_path);
  }
  return {text, json};
}

}  // namespace mmgrad::apps
