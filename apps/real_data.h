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

namespace mmgrad::apps {

data::CaptionTableOptions table_options(const train::RunConfig& c);
data::Preprocess preprocess_from_config(const train::RunConfig& c);
data::DecodeOptions decode_options(const train::RunConfig& c);

// A fresh run: trains the BPE on `captions` (tokenizer=train) or loads the pretrained file,
// keeps a copy in the run folder, and sets the model's vocab_size and eot_token_id.
std::unique_ptr<data::Tokenizer> make_tokenizer(train::RunConfig& c, const std::string& run_dir,
                                                const std::vector<std::string>& captions, bool save = true);
// Warns (stderr) when some of the first 5000 captions do not fit context_length.
void warn_truncated_captions(const data::Tokenizer& tok, const std::vector<std::string>& captions,
                             int64_t context_length);
// A resumed or evaluated run: the copy in the run folder, checked against the model.
std::unique_ptr<data::Tokenizer> load_run_tokenizer(const train::RunConfig& c, const std::string& run_dir);

// Evaluates `path` (a caption table, or a folder of class folders) and prints the report;
// writes the figures as JSON to json_path unless it is empty.
void evaluate_data(const nn::ClipModel& model, const data::Tokenizer& tokenizer, const train::RunConfig& c,
                   const std::string& path, int64_t max_samples, const std::string& json_path);

}  // namespace mmgrad::apps
