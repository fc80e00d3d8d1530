// Without libFuzzer (a g++ build, or the sanitizer build), each fuzz target is a program that
// runs its input function once on every file named or found under the folders named: the
// seed corpus and every input a fuzzing run ever found worth keeping, replayed by
// `meson test fuzz-corpus` as regression tests.
#include <algorithm>
#include <cstdint>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const uint8_t* data, size_t size);

namespace {
void replay(const std::filesystem::path& file) {
  std::ifstream in(file, std::ios::binary);
  std::vector<char> bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  if (!in.eof() && in.fail()) {
    std::fprintf(stderr, "cannot read %s\n", file.c_str());
    std::exit(2);
  }
  LLVMFuzzerTestOneInput(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size());
}
}  // namespace

int main(int argc, char** argv) {
  namespace fs = std::filesystem;
  if (argc < 2) {
    std::fprintf(stderr, "usage: %s FILE_OR_FOLDER...  (replays each input through the fuzz target)\n", argv[0]);
    return 2;
  }
  int64_t replayed = 0;
  for (int i = 1; i < argc; ++i) {
    fs::path arg = argv[i];
    if (fs::is_directory(arg)) {
      std::vector<fs::path> files;
      for (const auto& entry : fs::recursive_directory_iterator(arg))
        if (entry.is_regular_file()) files.push_back(entry.path());
      std::sort(files.begin(), files.end());  // a stable order for reproducible logs
      for (const auto& f : files) replay(f), ++replayed;
    } else if (fs::is_regular_file(arg)) {
      replay(arg), ++replayed;
    } else {
      std::fprintf(stderr, "%s: no such file or folder\n", argv[i]);
      return 2;
    }
  }
  if (replayed == 0) {
    std::fprintf(stderr, "no inputs found under the paths given\n");
    return 1;
  }
  std::printf("%s: %lld inputs replayed, no finding\n", fs::path(argv[0]).filename().c_str(), static_cast<long long>(replayed));
  return 0;
}
