#include "apps/cli_inputs.h"

#include <algorithm>
#include <filesystem>
#include <fstream>

#include "core/error.h"
#include "data/caption_table.h"
#include "train/run_files.h"

namespace mmgrad::apps {
namespace fs = std::filesystem;

ImageList list_images(const std::string& path, const train::RunConfig& c) {
  ImageList out;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    for (const auto& e : fs::recursive_directory_iterator(path, ec))
      if (e.is_regular_file() && data::has_image_extension(e.path().string())) out.paths.push_back(e.path().string());
    if (ec) fail("mmgrad", "cannot list '" + path + "': " + ec.message());
    std::sort(out.paths.begin(), out.paths.end());
    if (out.paths.empty()) fail("mmgrad", "no image files (.png, .jpg, .jpeg, .bmp, .gif) under '" + path + "'");
    return out;
  }
  if (!fs::exists(path, ec)) fail("mmgrad", "'" + path + "' does not exist");
  if (data::has_image_extension(path)) {
    out.paths.push_back(path);
    return out;
  }
  const std::string ext = fs::path(path).extension().string();
  if (ext == ".tsv" || ext == ".csv") {
    data::CaptionTableOptions o = train::table_options(c);
    if (ext == ".csv") o.separator = ',';
    const data::CaptionTable t = data::read_caption_table(path, o);
    for (const auto& row : t.rows) {
      out.paths.push_back(row.image_path);
      out.captions.push_back(row.caption);
    }
    return out;
  }
  fail("mmgrad", "'" + path + "' is not an image file, a folder of images or a caption table (.tsv, .csv)");
}

std::vector<std::string> read_text_lines(const std::string& path) {
  std::ifstream in(path);
  if (!in) fail("mmgrad", "cannot read the text file '" + path + "'");
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.find_first_not_of(" \t") != std::string::npos) out.push_back(line);
  }
  if (out.empty()) fail("mmgrad", "'" + path + "' holds no text (one text per line)");
  return out;
}

}  // namespace mmgrad::apps
