// Image-caption tables in OpenCLIP's convention (its CsvDataset): one row per image-caption
// pair, tab-separated by default, with a header naming the columns; the image column
// (`filepath`) and the caption column (`title`) are configurable, other columns are ignored.
// Image paths are relative to the table's own folder unless absolute.
//
// Also folder-per-class image sets (ImageNet's layout: root/<class>/<image>) for zero-shot
// classification.
#pragma once
#include <cstdint>
#include <string>
#include <vector>

namespace mmgrad::data {

struct CaptionTableOptions {
  char separator = '\t';                  // ',' for CSV
  std::string image_column = "filepath";
  std::string caption_column = "title";
};

struct CaptionRow {
  std::string image_path;  // resolved against the table's folder
  std::string caption;
  int64_t line = 0;        // 1-based line in the table, for messages
};

struct CaptionTable {
  std::string path;
  std::vector<CaptionRow> rows;
};

// Fields may be quoted ("a, b" or "say ""hi"""), as CSV writers do. Blank lines are skipped;
// CRLF line ends are accepted. A row with the wrong number of fields, an empty path or
// caption, a caption that is not valid UTF-8, a missing column or an empty table is an error
// naming the file and the line.
CaptionTable read_caption_table(const std::string& path, const CaptionTableOptions& options = {});

// A folder of class folders. Classes are the subfolder names in sorted order (so label ids
// are stable); an image is any .png, .jpg, .jpeg, .bmp or .gif file (any case) directly in a
// class folder, sorted by name. Class names for prompts come from the folder names with '_'
// read as a space, or from `class_names_file` (one name per line, in the sorted folder order)
// when given. Errors name the folder: missing, no class folders, a class without images, a
// names file with the wrong count.
struct ClassFolder {
  std::string root;
  std::vector<std::string> class_names;
  std::vector<std::string> image_paths;
  std::vector<int64_t> labels;  // one per image, index into class_names
};
ClassFolder read_class_folder(const std::string& root, const std::string& class_names_file = "");

// Whether `path` names an image file by its extension (the list above).
bool has_image_extension(const std::string& path);

}  // namespace mmgrad::data
