// write_file_atomically: the target holds the old or the complete new content, never a part.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "core/atomic_file.h"
#include "tests/core/test_util.h"

namespace {
std::string read_all(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return std::string(std::istreambuf_iterator<char>(in), {});
}
}  // namespace

TEST(AtomicFile, ReplacesTheFileAndLeavesNoTemporary) {
  std::string path = mmtest::temp_path("atomic.txt");
  mmgrad::write_file_atomically(path, "test", [](std::ostream& o) { o << "first"; });
  mmgrad::write_file_atomically(path, "test", [](std::ostream& o) { o << "second"; });
  EXPECT_EQ(read_all(path), "second");
  for (const auto& e : std::filesystem::directory_iterator(std::filesystem::path(path).parent_path()))
    EXPECT_EQ(e.path().string().find(".tmp."), std::string::npos) << e.path();
}

TEST(AtomicFile, AFailingWriterKeepsTheOldContent) {
  std::string path = mmtest::temp_path("keep.txt");
  mmgrad::write_file_atomically(path, "test", [](std::ostream& o) { o << "old"; });
  EXPECT_THROW(mmgrad::write_file_atomically(path, "test",
                                             [](std::ostream& o) {
                                               o << "half of the new";
                                               throw std::runtime_error("interrupted");
                                             }),
               std::runtime_error);
  EXPECT_EQ(read_all(path), "old");
  EXPECT_FALSE(std::filesystem::exists(path + ".tmp." + std::to_string(::getpid())));
  EXPECT_MMGRAD_ERROR(mmgrad::write_file_atomically(mmtest::temp_path("no/dir/x"), "test", [](std::ostream&) {}),
                      "test", "cannot write");
}
