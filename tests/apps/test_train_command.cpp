// `mmgrad train` and `mmgrad eval` as a user runs them: the run folder, the report, resume,
// and clear errors for bad input.
#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/json.h"
#include "tests/core/test_util.h"

namespace {

using mmtest::AppRun;
using mmtest::run_app;

using mmtest::read_file;

size_t count_lines(const std::string& path) {
  std::ifstream in(path);
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// A model small enough to train a few steps in well under a second.
const char* kTiny =
    " --set image_size=16 --set patch_size=8 --set vision_width=32 --set text_width=32 --set embed_dim=32"
    " --set vision_layers=1 --set text_layers=1 --set vision_heads=2 --set text_heads=2 --set batch_size=16"
    " --set train_size=2000 --set tokenizer_vocab=300 --set eval_size=40 --set log_every=2";

class TrainCommand : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("MMGRAD_APP")) GTEST_SKIP() << "MMGRAD_APP (path of the mmgrad binary) is not set";
  }
};

}  // namespace

TEST_F(TrainCommand, TrainsEvaluatesAndResumesThroughTheRunFolder) {
  const std::string dir = mmtest::temp_path("cli_run");
  std::filesystem::remove_all(dir);
  AppRun t = run_app(std::string("train --run-dir ") + dir + kTiny + " --set steps=4");
  ASSERT_EQ(t.status, 0) << t.out;
  for (const char* f : {"config.json", "tokenizer.bpe", "metrics.jsonl", "checkpoint.safetensors", "eval.json"})
    EXPECT_TRUE(std::filesystem::exists(dir + "/" + f)) << f;
  EXPECT_EQ(count_lines(dir + "/metrics.jsonl"), 4u);
  for (const char* s : {"step 2/4", "step 4/4", "samples/s", "image->text recall@1/5/10", "zero-shot colour accuracy",
                        "zero-shot shape accuracy", "ITM accuracy", "reference:", "[ 16.7%]", "[ 25.0%]"})
    EXPECT_NE(t.out.find(s), std::string::npos) << s << "\n" << t.out;
  // A 300-token vocabulary splits words, so some captions do not fit 16 tokens: a warning.
  EXPECT_NE(t.out.find("are truncated"), std::string::npos) << t.out;
  // The saved configuration is the resolved one (vocabulary from the tokenizer).
  mmgrad::json::Value config = mmgrad::json::Value::parse(read_file(dir + "/config.json"));
  EXPECT_EQ(config.find("vocab_size")->as_int(""), 300);
  EXPECT_EQ(config.find("vision_width")->as_int(""), 32);

  // eval on the checkpoint gives the same figures as the end of training.
  const std::string again = dir + "/eval_again.json";
  AppRun e = run_app("eval --checkpoint " + dir + "/checkpoint.safetensors --json " + again);
  ASSERT_EQ(e.status, 0) << e.out;
  EXPECT_EQ(read_file(again), read_file(dir + "/eval.json"));
  EXPECT_NE(e.out.find("(step 4)"), std::string::npos) << e.out;

  // Resume to a later step: the metrics continue, the step count goes on from 4.
  AppRun r = run_app("train --resume " + dir + "/checkpoint.safetensors --set steps=6");
  ASSERT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("trained steps 5-6"), std::string::npos) << r.out;
  EXPECT_EQ(count_lines(dir + "/metrics.jsonl"), 6u);
}

TEST_F(TrainCommand, BadInputGetsAClearErrorAndNoCrash) {
  AppRun typo = run_app(std::string("train --run-dir ") + mmtest::temp_path("cli_typo") + " --set visoin_width=64");
  EXPECT_EQ(typo.status, 1);
  EXPECT_NE(typo.out.find("unknown key 'visoin_width' (did you mean 'vision_width'?)"), std::string::npos) << typo.out;

  AppRun option = run_app("train --stpes 3");
  EXPECT_EQ(option.status, 1);
  EXPECT_NE(option.out.find("unknown option '--stpes'"), std::string::npos) << option.out;

  AppRun heads = run_app(std::string("train --run-dir ") + mmtest::temp_path("cli_heads") + kTiny + " --set vision_heads=3");
  EXPECT_EQ(heads.status, 1);
  EXPECT_NE(heads.out.find("vision_width 32 is not divisible by vision_heads 3"), std::string::npos) << heads.out;

  AppRun missing = run_app("eval --checkpoint /nonexistent/checkpoint.safetensors");
  EXPECT_EQ(missing.status, 1);
  EXPECT_NE(missing.out.find("/nonexistent/checkpoint.safetensors"), std::string::npos) << missing.out;

  const std::string corrupt = mmtest::temp_path("cli_corrupt.safetensors");
  std::ofstream(corrupt) << "this is not a checkpoint";
  AppRun bad = run_app("eval --checkpoint " + corrupt);
  EXPECT_EQ(bad.status, 1);
  EXPECT_NE(bad.out.find(corrupt), std::string::npos) << bad.out;

  AppRun no_ckpt = run_app("eval");
  EXPECT_EQ(no_ckpt.status, 1);
  EXPECT_NE(no_ckpt.out.find("--checkpoint FILE is required"), std::string::npos) << no_ckpt.out;

  AppRun help = run_app("train --help");
  EXPECT_EQ(help.status, 0);
  EXPECT_NE(help.out.find("vision_width"), std::string::npos);
  EXPECT_NE(help.out.find("examples:"), std::string::npos);
}
