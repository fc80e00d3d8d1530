#include "data/caption_table.h"

#include <algorithm>
#include <cerrno>
#include <cstring>
#include <filesystem>
#include <fstream>

#include <fmt/format.h>

#include "core/error.h"
#include "core/utf8.h"

namespace mmgrad::data {
namespace fs = std::filesystem;
namespace {

// Splits one line into fields; quoted fields may hold the separator and doubled quotes.
// Returns false on an unterminated quote.
bool split_fields(const std::string& line, char sep, std::vector<std::string>& out) {
  out.clear();
  std::string field;
  size_t i = 0;
  while (true) {
    field.clear();
    if (i < line.size() && line[i] == '"') {
      ++i;
      bool closed = false;
      while (i < line.size()) {
        if (line[i] == '"') {
          if (i + 1 < line.size() && line[i + 1] == '"') {
            field += '"';
            i += 2;
            continue;
          }
          closed = true;
          ++i;
          break;
        }
        field += line[i++];
      }
      if (!closed) return false;
      while (i < line.size() && line[i] != sep) field += line[i++];  // text after the quote: kept
    } else {
      while (i < line.size() && line[i] != sep) field += line[i++];
    }
    out.push_back(field);
    if (i >= line.size()) return true;
    ++i;  // the separator
  }
}

int64_t column_index(const std::vector<std::string>& header, const std::string& name, const std::string& path) {
  const auto it = std::find(header.begin(), header.end(), name);
  if (it == header.end()) {
    std::string have;
    for (const auto& h : header) have += (have.empty() ? "" : ", ") + ("'" + h + "'");
    fail("caption table", fmt::format("'{}' has no column '{}' (its header has {}); set the column name "
                                      "(image_column / caption_column) or fix the header", path, name, have));
  }
  return it - header.begin();
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

}  // namespace

CaptionTable read_caption_table(const std::string& path, const CaptionTableOptions& options) {
  std::ifstream in(path, std::ios::binary);
  if (!in) fail("caption table", fmt::format("cannot open '{}' ({})", path, std::strerror(errno)));
  CaptionTable table;
  table.path = path;
  const fs::path folder = fs::path(path).parent_path();
  std::string line;
  std::vector<std::string> header, fields;
  int64_t line_no = 0, image_col = -1, caption_col = -1;
  while (std::getline(in, line)) {
    ++line_no;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line_no == 1 && line.rfind("\xEF\xBB\xBF", 0) == 0) line.erase(0, 3);  // a UTF-8 byte-order mark
    if (line.find_first_not_of(" \t") == std::string::npos) continue;
    const auto where = [&] { return fmt::format("'{}' line {}", path, line_no); };
    if (!split_fields(line, options.separator, fields)) fail("caption table", where() + ": a quoted field is not closed");
    if (header.empty()) {
      header = fields;
      image_col = column_index(header, options.image_column, path);
      caption_col = column_index(header, options.caption_column, path);
      continue;
    }
    if (fields.size() != header.size())
      fail("caption table", fmt::format("{}: {} fields where the header has {} (separator '{}')", where(),
                                        fields.size(), header.size(), options.separator == '\t' ? "\\t" : std::string(1, options.separator)));
    CaptionRow row;
    row.line = line_no;
    const std::string& file = fields[static_cast<size_t>(image_col)];
    row.caption = fields[static_cast<size_t>(caption_col)];
    if (file.empty()) fail("caption table", where() + ": the image path is empty");
    if (row.caption.find_first_not_of(" \t") == std::string::npos) fail("caption table", where() + ": the caption is empty");
    if (!utf8::is_valid(row.caption)) fail("caption table", where() + ": the caption is not valid UTF-8");
    row.image_path = fs::path(file).is_absolute() ? file : (folder / file).string();
    table.rows.push_back(std::move(row));
  }
  if (header.empty()) fail("caption table", fmt::format("'{}' is empty (no header line)", path));
  if (table.rows.empty()) fail("caption table", fmt::format("'{}' has a header but no rows", path));
  return table;
}

bool has_image_extension(const std::string& path) {
  const std::string ext = lower(fs::path(path).extension().string());
  return ext == ".png" || ext == ".jpg" || ext == ".jpeg" || ext == ".bmp" || ext == ".gif";
}

ClassFolder read_class_folder(const std::string& root, const std::string& class_names_file) {
  std::error_code ec;
  if (!fs::is_directory(root, ec)) fail("class folder", fmt::format("'{}' is not a folder", root));
  ClassFolder out;
  out.root = root;
  std::vector<fs::path> classes;
  for (const auto& e : fs::directory_iterator(root)) if (e.is_directory()) classes.push_back(e.path());
  std::sort(classes.begin(), classes.end());
  if (classes.empty()) fail("class folder", fmt::format("'{}' has no class folders (expected {}/<class>/<image>)", root, root));
  for (size_t c = 0; c < classes.size(); ++c) {
    std::vector<std::string> images;
    for (const auto& e : fs::directory_iterator(classes[c]))
      if (e.is_regular_file() && has_image_extension(e.path().string())) images.push_back(e.path().string());
    if (images.empty()) fail("class folder", fmt::format("class folder '{}' has no images", classes[c].string()));
    std::sort(images.begin(), images.end());
    for (auto& p : images) {
      out.image_paths.push_back(std::move(p));
      out.labels.push_back(static_cast<int64_t>(c));
    }
    std::string name = classes[c].filename().string();
    std::replace(name.begin(), name.end(), '_', ' ');
    out.class_names.push_back(name);
  }
  if (!class_names_file.empty()) {
    std::ifstream in(class_names_file);
    if (!in) fail("class folder", fmt::format("cannot open class names file '{}' ({})", class_names_file, std::strerror(errno)));
    std::vector<std::string> names;
    std::string line;
    while (std::getline(in, line)) {
      if (!line.empty() && line.back() == '\r') line.pop_back();
      if (!line.empty()) names.push_back(line);
    }
    if (names.size() != out.class_names.size())
      fail("class folder", fmt::format("'{}' names {} classes but '{}' has {} class folders", class_names_file,
                                       names.size(), root, out.class_names.size()));
    out.class_names = names;
  }
  return out;
}

}  // namespace mmgrad::data
