// Caption tables (OpenCLIP's CSV/TSV convention) and folder-per-class image sets.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/test_util.h"
#include "data/caption_table.h"

using namespace mmgrad;
using namespace mmgrad::data;
namespace fs = std::filesystem;

namespace {

std::string write_text(const std::string& name, const std::string& text) {
  const std::string path = mmtest::temp_path(name);
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path, std::ios::binary) << text;
  return path;
}

void touch(const std::string& path) {
  fs::create_directories(fs::path(path).parent_path());
  std::ofstream(path) << "x";
}

}  // namespace

TEST(CaptionTable, ReadsTsvWithPathsRelativeToTheTable) {
  const std::string path = write_text("tables/a/train.tsv",
                                      "id\tfilepath\ttitle\n1\timages/x.png\ta red circle\n\n"
                                      "2\t/abs/y.jpg\tthe dog, running\r\n");
  const CaptionTable t = read_caption_table(path);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].image_path, (fs::path(path).parent_path() / "images/x.png").string());
  EXPECT_EQ(t.rows[0].caption, "a red circle");
  EXPECT_EQ(t.rows[0].line, 2);
  EXPECT_EQ(t.rows[1].image_path, "/abs/y.jpg");  // absolute paths are kept
  EXPECT_EQ(t.rows[1].caption, "the dog, running");  // CR of a CRLF line end dropped
  EXPECT_EQ(t.rows[1].line, 4);                      // the blank line still counts
}

TEST(CaptionTable, CsvWithQuotedFieldsAndOtherColumnNames) {
  const std::string path = write_text("tables/b.csv",
                                      "caption,image\n\"a cat, asleep\",c.png\n\"she said \"\"hi\"\"\",d.png\n");
  CaptionTableOptions o;
  o.separator = ',';
  o.image_column = "image";
  o.caption_column = "caption";
  const CaptionTable t = read_caption_table(path, o);
  ASSERT_EQ(t.rows.size(), 2u);
  EXPECT_EQ(t.rows[0].caption, "a cat, asleep");
  EXPECT_EQ(t.rows[1].caption, "she said \"hi\"");
  EXPECT_EQ(fs::path(t.rows[1].image_path).filename(), "d.png");
}

TEST(CaptionTable, ErrorsNameTheFileAndLine) {
  const std::string wrong_fields = write_text("tables/bad1.tsv", "filepath\ttitle\na.png\tok\nb.png\n");
  EXPECT_MMGRAD_ERROR(read_caption_table(wrong_fields), "caption table", wrong_fields, "line 3", "1 fields",
                      "header has 2");
  const std::string no_column = write_text("tables/bad2.tsv", "path\ttext\na.png\tok\n");
  EXPECT_MMGRAD_ERROR(read_caption_table(no_column), "caption table", "no column 'filepath'", "'path'", "'text'");
  const std::string empty = write_text("tables/bad3.tsv", "");
  EXPECT_MMGRAD_ERROR(read_caption_table(empty), "caption table", "is empty");
  const std::string header_only = write_text("tables/bad4.tsv", "filepath\ttitle\n");
  EXPECT_MMGRAD_ERROR(read_caption_table(header_only), "caption table", "no rows");
  const std::string empty_caption = write_text("tables/bad5.tsv", "filepath\ttitle\na.png\t  \n");
  EXPECT_MMGRAD_ERROR(read_caption_table(empty_caption), "caption table", "line 2", "caption is empty");
  const std::string empty_path = write_text("tables/bad6.tsv", "filepath\ttitle\n\tcap\n");
  EXPECT_MMGRAD_ERROR(read_caption_table(empty_path), "caption table", "line 2", "image path is empty");
  const std::string bad_utf8 = write_text("tables/bad7.tsv", "filepath\ttitle\na.png\tcaf\xC3\n");
  EXPECT_MMGRAD_ERROR(read_caption_table(bad_utf8), "caption table", "line 2", "not valid UTF-8");
  const std::string open_quote = write_text("tables/bad8.tsv", "filepath\ttitle\na.png\t\"never closed\n");
  EXPECT_MMGRAD_ERROR(read_caption_table(open_quote), "caption table", "line 2", "not closed");
  EXPECT_MMGRAD_ERROR(read_caption_table(mmtest::temp_path("tables/none.tsv")), "caption table", "none.tsv",
                      "cannot open");
}

TEST(CaptionTable, AcceptsValidMultibyteUtf8) {
  const std::string path = write_text("tables/utf8.tsv", "filepath\ttitle\na.png\tcaf\xC3\xA9 \xF0\x9F\x98\x80\n");
  EXPECT_EQ(read_caption_table(path).rows[0].caption, "caf\xC3\xA9 \xF0\x9F\x98\x80");
}

TEST(ClassFolder, ClassesSortedImagesSortedNamesReadable) {
  const std::string root = mmtest::temp_path("classes");
  touch(root + "/sea_lion/b.PNG");
  touch(root + "/sea_lion/a.jpg");
  touch(root + "/sea_lion/notes.txt");  // not an image: ignored
  touch(root + "/cat/z.png");
  const ClassFolder f = read_class_folder(root);
  ASSERT_EQ(f.class_names, (std::vector<std::string>{"cat", "sea lion"}));
  ASSERT_EQ(f.image_paths.size(), 3u);
  EXPECT_EQ(fs::path(f.image_paths[0]).filename(), "z.png");
  EXPECT_EQ(fs::path(f.image_paths[1]).filename(), "a.jpg");
  EXPECT_EQ(fs::path(f.image_paths[2]).filename(), "b.PNG");
  EXPECT_EQ(f.labels, (std::vector<int64_t>{0, 1, 1}));

  const std::string names = write_text("classes_names.txt", "kitten\nsea lion pup\n");
  EXPECT_EQ(read_class_folder(root, names).class_names, (std::vector<std::string>{"kitten", "sea lion pup"}));
  const std::string too_few = write_text("classes_names1.txt", "kitten\n");
  EXPECT_MMGRAD_ERROR(read_class_folder(root, too_few), "class folder", "names 1 classes", "has 2 class folders");
}

TEST(ClassFolder, Errors) {
  EXPECT_MMGRAD_ERROR(read_class_folder(mmtest::temp_path("no_such_dir")), "class folder", "not a folder");
  const std::string flat = mmtest::temp_path("flat");
  touch(flat + "/a.png");
  EXPECT_MMGRAD_ERROR(read_class_folder(flat), "class folder", "no class folders");
  const std::string empty_class = mmtest::temp_path("empty_class");
  touch(empty_class + "/dog/a.png");
  fs::create_directories(empty_class + "/cat");
  EXPECT_MMGRAD_ERROR(read_class_folder(empty_class), "class folder", "cat", "has no images");
}
