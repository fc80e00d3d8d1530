// The parts of `mmgrad train` and `mmgrad eval` for real data: caption tables read by the
// background loader, the tokenizer (trained on the captions or a pretrained vocabulary),
// preprocessing from the run configuration, and evaluation of a table or a class folder.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/caption_table.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/tokenizer.h"
#include "models/clip.h"
#include "train/run_config.h"
#include "train/run_files.h"

namespace mmgrad::apps {

using train::decode_options;          // train/run_files.h
using train::load_run_tokenizer;
using train::preprocess_from_config;
using train::table_options;

// A fresh run: trains the BPE on `captions` (tokenizer=train) or loads the pretrained file,
// keeps a copy in the run folder, and sets the model's vocab_size and eot_token_id.
std::unique_ptr<data::Tokenizer> make_tokenizer(train::RunConfig& c, const std::string& run_dir,
                                                const std::vector<std::string>& captions, bool save = true);
// Warns (stderr) when some of the first 5000 captions do not fit context_length.
void warn_truncated_captions(const data::Tokenizer& tok, const std::vector<std::string>& captions,
                             int64_t context_length);

// Evaluates `path` (a caption table, or a folder of class folders) and prints the report;
// writes the figures as JSON to json_path unless it is empty. Returns the report and JSON.
struct EvalOutput {
  std::string text, json;
};
EvalOutput evaluate_data(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const train::RunConfig& c,
                   const std::string& path, int64_t max_samples, const std::string& json_path);

}  // namespace mmgrad::apps
