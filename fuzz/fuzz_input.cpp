#include "fuzz/fuzz_input.h"

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>

namespace mmgrad::fuzz {

namespace {
std::string private_folder() {
  namespace fs = std::filesystem;
  fs::path base = fs::is_directory("/dev/shm") ? fs::path("/dev/shm") : fs::temp_directory_path();
  fs::path folder = base / ("mmgrad-fuzz-" + std::to_string(::getpid()));
  fs::create_directories(folder);
  // Removed at a normal exit; libFuzzer's crash exits leave it, next to the crash file.
  static const std::string removed_at_exit = folder.string();
  std::atexit([] {
    std::error_code ignored;
    std::filesystem::remove_all(removed_at_exit, ignored);
  });
  return folder.string();
}
}  // namespace

std::string input_as_file(const uint8_t* data, size_t size, const std::string& file_name) {
  static const std::string folder = private_folder();
  std::string path = folder + "/" + file_name;
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(reinterpret_cast<const char*>(data), static_cast<std::streamsize>(size));
  out.close();
  if (!out) {
    std::fprintf(stderr, "fuzz: cannot write %s\n", path.c_str());
    std::abort();
  }
  return path;
}

void require(bool condition, const char* what) {
  if (condition) return;
  std::fprintf(stderr, "fuzz: invariant broken: %s\n", what);
  std::abort();
}

}  // namespace mmgrad::fuzz
