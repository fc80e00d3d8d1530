// What a run's configuration means for its files and its data: where the run folder keeps
// its tokenizer and how to load it, how images are read (caption table columns, decoding,
// preprocessing and augmentation). Shared by training, evaluation and inference.
#pragma once
#include <memory>
#include <string>

#include "data/caption_table.h"
#include "data/image.h"
#include "data/image_transform.h"
#include "data/tokenizer.h"
#include "train/run_config.h"

namespace mmgrad::train {

data::CaptionTableOptions table_options(const RunConfig& c);
// The preprocessing the run trains with (preprocess_eval uses the same size and
// normalisation). Shapes runs see [0, 1] pixels, as the built-in dataset renders them.
data::Preprocess preprocess_from_config(const RunConfig& c);
data::DecodeOptions decode_options(const RunConfig& c);

// Where the run folder keeps its tokenizer: our BPE's own format, or the pretrained file
// copied in (so that the run does not depend on the original staying where it was).
std::string run_tokenizer_path(const RunConfig& c, const std::string& run_dir);
std::unique_ptr<data::Tokenizer> load_tokenizer_file(const std::string& path, bool trained_bpe);
// A resumed or evaluated run's tokenizer: the copy in the run folder, checked against the model.
std::unique_ptr<data::Tokenizer> load_run_tokenizer(const RunConfig& c, const std::string& run_dir);

}  // namespace mmgrad::train
