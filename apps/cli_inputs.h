// What the inference commands take on the command line: images named by a file, a folder
// or a caption table, and texts from a file.
#pragma once
#include <string>
#include <vector>

#include "train/run_config.h"

namespace mmgrad::apps {

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
