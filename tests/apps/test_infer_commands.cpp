// `mmgrad embed | search | caption | zeroshot` and `mmgrad data shapes`, run as a user runs
// them on a small trained model and the exported shapes images: the files they write, the
// rankings they print (checked against the embeddings `embed` wrote), and clear errors.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "autograd/ops.h"
#include "core/json.h"
#include "data/image.h"
#include "tests/core/test_util.h"
#include "train/safetensors.h"

namespace {

using mmtest::AppRun;
using mmtest::run_app;
namespace fs = std::filesystem;

const char* kTiny =
    " --set image_size=16 --set patch_size=8 --set vision_width=32 --set text_width=32 --set embed_dim=32"
    " --set vision_layers=1 --set text_layers=1 --set vision_heads=2 --set text_heads=2 --set batch_size=16"
    " --set train_size=2000 --set tokenizer_vocab=400 --set eval_size=20 --set steps=3";

// One trained run and one exported image set for the whole suite.
class InferCommands : public ::testing::Test {
 protected:
  static void SetUpTestSuite() {
    if (!std::getenv("MMGRAD_APP") || !mmgrad::data::image_decoding_available()) return;
    run_dir_ = mmtest::temp_path("infer_run");
    data_dir_ = mmtest::temp_path("infer_data");
    fs::remove_all(run_dir_);
    fs::remove_all(data_dir_);
    setup_ = run_app("train --run-dir " + run_dir_ + kTiny);
    if (setup_.status == 0) setup_ = run_app("data shapes --out " + data_dir_ + " --count 24 --image-size 16");
  }
  void SetUp() override {
    if (!std::getenv("MMGRAD_APP")) GTEST_SKIP() << "MMGRAD_APP (path of the mmgrad binary) is not set";
    if (!mmgrad::data::image_decoding_available()) GTEST_SKIP() << "built without libstb";
    ASSERT_EQ(setup_.status, 0) << setup_.out;
  }
  static std::string ckpt() { return run_dir_ + "/checkpoint.safetensors"; }
  static std::string run_dir_, data_dir_;
  static AppRun setup_;
};
std::string InferCommands::run_dir_, InferCommands::data_dir_;
AppRun InferCommands::setup_;

TEST_F(InferCommands, DataShapesWritesImagesATableAndClassFolders) {
  size_t images = 0, class_images = 0;
  for (const auto& e : fs::directory_iterator(data_dir_ + "/images")) images += e.path().extension() == ".png";
  for (const auto& e : fs::recursive_directory_iterator(data_dir_ + "/classes")) class_images += e.path().extension() == ".png";
  EXPECT_EQ(images, 24u);
  EXPECT_GT(class_images, 0u);
  EXPECT_LT(class_images, 24u);  // two-object images have no single class
  std::ifstream table(data_dir_ + "/captions.tsv");
  std::string header, first;
  std::getline(table, header);
  std::getline(table, first);
  EXPECT_EQ(header, "filepath\ttitle");
  EXPECT_EQ(first.rfind("images/00000.png\t", 0), 0u) << first;
  const auto img = mmgrad::data::decode_image_file(data_dir_ + "/images/00000.png");
  EXPECT_EQ(img.width, 16);
}

TEST_F(InferCommands, EmbedWritesUnitEmbeddingsWithTheirSources) {
  const std::string out = data_dir_ + "/emb.safetensors";
  AppRun r = run_app("embed --checkpoint " + ckpt() + " --images " + data_dir_ + "/images --text 'a red circle'" +
                     " --text 'a blue square' --out " + out);
  ASSERT_EQ(r.status, 0) << r.out;
  const auto f = mmgrad::train::load_safetensors(out);
  ASSERT_EQ(f.tensors.size(), 2u);
  EXPECT_EQ(f.tensors[0].first, "image_embeds");
  EXPECT_EQ(f.tensors[0].second.shape(), (mmgrad::Shape{24, 32}));
  EXPECT_EQ(f.tensors[1].second.shape(), (mmgrad::Shape{2, 32}));
  for (const auto& [name, t] : f.tensors) {
    const std::vector<float> v = mmgrad::to_vector<float>(t);
    for (int64_t i = 0; i < t.shape()[0]; ++i) {
      double norm = 0;
      for (int64_t j = 0; j < 32; ++j) norm += v[static_cast<size_t>(i * 32 + j)] * v[static_cast<size_t>(i * 32 + j)];
      EXPECT_NEAR(std::sqrt(norm), 1.0, 1e-5) << name << " row " << i;
    }
  }
  const auto paths = mmgrad::json::Value::parse(f.metadata.at("image_paths")).as_array("");
  ASSERT_EQ(paths.size(), 24u);
  EXPECT_NE(paths[0].as_string("").find("00000.png"), std::string::npos);
  EXPECT_EQ(mmgrad::json::Value::parse(f.metadata.at("texts")).as_array("")[1].as_string(""), "a blue square");
}

TEST_F(InferCommands, SearchRanksImagesByTheSimilarityEmbedGives) {
  const std::string out = data_dir_ + "/emb_query.safetensors";
  ASSERT_EQ(run_app("embed --checkpoint " + ckpt() + " --images " + data_dir_ + "/images --text 'a green square' --out " + out).status, 0);
  const auto f = mmgrad::train::load_safetensors(out);
  const std::vector<double> sims = mmgrad::to_vector<double>(
      mmgrad::matmul(f.tensors[1].second, mmgrad::transpose(f.tensors[0].second, 0, 1)));
  std::vector<double> sorted = sims;
  std::sort(sorted.rbegin(), sorted.rend());

  AppRun r = run_app("search --checkpoint " + ckpt() + " --images " + data_dir_ + "/images --text 'a green square' --top 4");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("query \"a green square\": top 4 of 24 images"), std::string::npos) << r.out;
  const std::regex line(R"(\s+(\d)\. ([0-9.-]+)\s+(\S+))");
  std::vector<double> scores;
  for (std::sregex_iterator it(r.out.begin(), r.out.end(), line), end; it != end; ++it) scores.push_back(std::stod((*it)[2]));
  ASSERT_EQ(scores.size(), 4u) << r.out;
  for (size_t i = 0; i < 4; ++i) EXPECT_NEAR(scores[i], sorted[i], 2e-4) << r.out;

  // Captions for an image, from the table (duplicates ranked once).
  AppRun c = run_app("search --checkpoint " + ckpt() + " --image " + data_dir_ + "/images/00003.png --captions " +
                     data_dir_ + "/captions.tsv --top 2");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("top 2 of"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("   2. "), std::string::npos) << c.out;
}

TEST_F(InferCommands, CaptionAndZeroshotPrintOneLinePerImage) {
  AppRun c = run_app("caption --checkpoint " + ckpt() + " --images " + data_dir_ + "/images/00001.png --images " +
                     data_dir_ + "/images/00002.png --json " + data_dir_ + "/captions.json");
  ASSERT_EQ(c.status, 0) << c.out;
  EXPECT_NE(c.out.find("00001.png\t"), std::string::npos) << c.out;
  EXPECT_NE(c.out.find("00002.png\t"), std::string::npos) << c.out;
  std::ifstream js(data_dir_ + "/captions.json");
  std::stringstream ss;
  ss << js.rdbuf();
  EXPECT_EQ(mmgrad::json::Value::parse(ss.str()).as_array("").size(), 2u);

  AppRun z = run_app("zeroshot --checkpoint " + ckpt() + " --data " + data_dir_ + "/classes --prompts 'a {}|there is a {}'");
  ASSERT_EQ(z.status, 0) << z.out;
  EXPECT_NE(z.out.find("2 prompt templates"), std::string::npos) << z.out;
  EXPECT_NE(z.out.find("top-1 accuracy"), std::string::npos) << z.out;

  AppRun p = run_app("zeroshot --checkpoint " + ckpt() + " --images " + data_dir_ + "/images/00000.png --classes " +
                     "'circle|square|triangle|diamond' --prompts 'a {}'");
  ASSERT_EQ(p.status, 0) << p.out;
  const std::regex pred(R"(00000\.png\t(circle|square|triangle|diamond)\t(0\.\d+|1\.000))");
  EXPECT_TRUE(std::regex_search(p.out, pred)) << p.out;
}

TEST_F(InferCommands, BadInputGetsAClearError) {
  const std::pair<std::string, std::string> cases[] = {
      {"embed --images x --out y", "--checkpoint is required"},
      {"embed --checkpoint " + ckpt() + " --out " + data_dir_ + "/none.safetensors", "nothing to embed"},
      {"search --checkpoint " + ckpt() + " --images " + data_dir_ + "/images", "--text QUERY is required"},
      {"search --checkpoint " + ckpt() + " --images a --image b", "give either"},
      {"search --checkpoint " + ckpt() + " --images /nonexistent --text x", "'/nonexistent' does not exist"},
      {"caption --checkpoint " + ckpt() + " --images " + data_dir_ + "/captions.json", "is not an image file"},
      {"zeroshot --checkpoint " + ckpt() + " --images " + data_dir_ + "/images --classes one", "at least two"},
      {"zeroshot --checkpoint " + ckpt() + " --data " + data_dir_ + "/classes --prompts 'no placeholder'", "has no {}"},
      {"search --chekpoint x", "did you mean --checkpoint"},
      {"data shapes --out " + data_dir_ + "/x --split test", "--split must be held-out or train"},
  };
  for (const auto& [args, message] : cases) {
    AppRun r = run_app(args);
    EXPECT_EQ(r.status, 1) << args << "\n" << r.out;
    EXPECT_NE(r.out.find(message), std::string::npos) << args << "\n" << r.out;
  }
}

}  // namespace
