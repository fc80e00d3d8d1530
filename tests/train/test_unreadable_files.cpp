// Files mmgrad may not read and folders it may not write: each is a clear error naming the
// path and the reason, and a checkpoint that cannot be written leaves the previous one intact.
// CI runs as root, for whom permission bits do not apply, so the checks run in a forked child
// that first drops to the unprivileged user 'nobody' (uid 65534) when it is root.
#include <gtest/gtest.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>

#include "autograd/ops.h"
#include "data/bpe.h"
#include "data/caption_table.h"
#include "data/image.h"
#include "models/layers.h"
#include "tests/core/test_util.h"
#include "train/checkpoint.h"
#include "train/safetensors.h"

using namespace mmgrad;

namespace {

namespace fs = std::filesystem;

// In the child: `load` must throw mmgrad::Error whose message holds `path` and `reason`.
bool refuses(const char* what, const std::function<void()>& load, const std::string& path, const std::string& reason) {
  try {
    load();
    std::fprintf(stderr, "%s: no error\n", what);
  } catch (const Error& e) {
    const std::string m = e.what();
    if (m.find(path) != std::string::npos && m.find(reason) != std::string::npos) return true;
    std::fprintf(stderr, "%s: the error does not name '%s' and '%s': %s\n", what, path.c_str(), reason.c_str(), m.c_str());
  }
  return false;
}

void drop_root() {
  if (::geteuid() != 0) return;
  if (::setgid(65534) != 0 || ::setuid(65534) != 0) {
    std::perror("cannot drop to uid 65534");
    std::_Exit(2);
  }
}

}  // namespace

TEST(UnreadableFiles, PermissionDeniedIsAClearErrorAndTheLastCheckpointSurvives) {
  GTEST_FLAG_SET(death_test_style, "threadsafe");
  const fs::path dir = mmtest::temp_path("permissions");
  fs::remove_all(dir);
  fs::create_directories(dir);
  fs::permissions(dir.parent_path(), fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                                         fs::perms::others_read | fs::perms::others_exec);
  fs::permissions(dir, fs::perms::owner_all | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);

  const std::string image = (dir / "a.png").string(), weights = (dir / "w.safetensors").string(),
                    table = (dir / "t.tsv").string(), tokenizer = (dir / "tok.bpe").string();
  data::Image img;
  img.width = img.height = 2;
  img.pixels.assign(12, 128);
  data::write_png(image, img);
  train::save_safetensors(weights, {{"x", ones({2})}});
  std::ofstream(table) << "filepath\ttitle\na.png\ta grey square\n";
  data::BpeTokenizer().save(tokenizer);
  for (const auto& f : {image, weights, table, tokenizer}) fs::permissions(f, fs::perms::none);

  // A run folder with a checkpoint, then made read-only.
  const fs::path run = dir / "run";
  fs::create_directories(run);
  Generator gen(3);
  nn::Mlp model(4, 8, nn::Activation::Gelu, gen);
  train::AdamW opt(model.named_parameters());
  const std::string saved = train::save_rotating_checkpoint(run.string(), model, opt, {1, 0, 0, 4, "{}"}, 3);
  std::ifstream in(saved, std::ios::binary);
  const std::string saved_bytes{std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
  fs::permissions(run, fs::perms::owner_read | fs::perms::owner_exec | fs::perms::group_read | fs::perms::group_exec |
                           fs::perms::others_read | fs::perms::others_exec);

  const std::string denied = "Permission denied";
  EXPECT_EXIT(
      {
        drop_root();
        bool ok = refuses("image", [&] { data::decode_image_file(image); }, image, denied);
        ok &= refuses("safetensors", [&] { train::load_safetensors(weights); }, weights, denied);
        ok &= refuses("caption table", [&] { data::read_caption_table(table); }, table, denied);
        ok &= refuses("tokenizer", [&] { data::BpeTokenizer::load(tokenizer); }, tokenizer, denied);
        ok &= refuses("checkpoint into a read-only folder",
                      [&] { train::save_rotating_checkpoint(run.string(), model, opt, {2, 0, 0, 8, "{}"}, 3); },
                      run.string(), denied);
        std::_Exit(ok ? 0 : 1);
      },
      ::testing::ExitedWithCode(0), "");

  fs::permissions(run, fs::perms::owner_all);
  std::ifstream again(saved, std::ios::binary);
  EXPECT_EQ(std::string(std::istreambuf_iterator<char>(again), std::istreambuf_iterator<char>()), saved_bytes);
  EXPECT_EQ(train::newest_good_checkpoint(run.string()), (run / "checkpoint-00000001.safetensors").string());
  fs::permissions(dir, fs::perms::owner_all);
  fs::remove_all(dir);
}
