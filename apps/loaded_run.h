// A trained run loaded for inference from its checkpoint: the resolved configuration (from
// the checkpoint's header), the tokenizer (the copy in the checkpoint's folder) and the
// model with its weights. Shared by eval, embed, search, caption and zeroshot.
#pragma once
#include <memory>
#include <string>
#include <vector>

#include "data/image_transform.h"
#include "data/tokenizer.h"
#include "models/clip.h"
#include "train/checkpoint.h"
#include "train/run_config.h"

namespace mmgrad::apps {

struct LoadedRun {
  std::string checkpoint;
  train::RunConfig config;
  train::TrainState state;
  std::unique_ptr<data::Tokenizer> tokenizer;
  std::unique_ptr<nn::ClipModel> model;  // in eval mode, on the CPU
};

LoadedRun load_run(const std::string& checkpoint);

// How images given as files are prepared for this run's model: its image size and the
// normalisation it trained with (the built-in shapes render [0, 1] pixels, no normalisation).
data::Preprocess inference_preprocess(const train::RunConfig& c);

// The images a path names: one image file, every image file under a folder (recursively,
// sorted by path), or the rows of a caption table (.tsv or .csv, as the run's table
// options read it; then `captions` holds each row's caption).
struct ImageList {
  std::vector<std::string> paths;
  std::vector<std::string> captions;  // empty unless the path was a table
};
ImageList list_images(const std::string& path, const train::RunConfig& c);

// Texts given on the command line: every --text, then the lines of --texts FILE (blank
// lines skipped), or a table's captions.
std::vector<std::string> read_text_lines(const std::string& path);

}  // namespace mmgrad::apps
