// Kill -9 at random moments of `mmgrad train` (checkpoints every step, so some kills land in
// the middle of a checkpoint write), resume from the run folder each time until the run
// completes: the final parameters and optimizer state must be bit-identical to an
// uninterrupted run's.
#include <gtest/gtest.h>

#include <filesystem>
#include <random>

#include "autograd/ops.h"
#include "tests/core/test_util.h"
#include "train/safetensors.h"

namespace {

namespace fs = std::filesystem;

const char* kTiny =
    " --set image_size=16 --set patch_size=8 --set vision_width=32 --set text_width=32 --set embed_dim=32"
    " --set vision_layers=1 --set text_layers=1 --set vision_heads=2 --set text_heads=2 --set batch_size=16"
    " --set train_size=2000 --set tokenizer_vocab=400 --set eval_size=20 --set steps=50 --set checkpoint_every=1"
    " --set log_every=10";

bool has_checkpoint(const std::string& dir) {
  if (!fs::is_directory(dir)) return false;
  for (const auto& e : fs::directory_iterator(dir))
    if (e.path().filename().string().rfind("checkpoint-", 0) == 0 && e.path().extension() == ".safetensors") return true;
  return false;
}

TEST(CrashResume, KilledAtRandomMomentsAndResumedEndsBitIdenticalToAnUninterruptedRun) {
  const char* app = std::getenv("MMGRAD_APP");
  if (!app) GTEST_SKIP() << "MMGRAD_APP is not set";
  const std::string straight = mmtest::temp_path("crash_straight"), crashed = mmtest::temp_path("crash_killed");
  fs::remove_all(straight);
  fs::remove_all(crashed);
  // One thread: the step time (and so where the kills land) is steadier.
  const std::string env = "MMGRAD_NUM_THREADS=1 ";
  mmtest::AppRun s = mmtest::run_shell(env + "'" + app + "' train --run-dir " + straight + kTiny + " 2>&1");
  ASSERT_EQ(s.status, 0) << s.out;

  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> delay_ms(250, 1000);
  int kills = 0, runs = 0;
  for (; runs < 150; ++runs) {
    const std::string args = has_checkpoint(crashed) ? " train --resume " + crashed : " train --run-dir " + crashed + kTiny;
    const int ms = delay_ms(rng);
    mmtest::AppRun r = mmtest::run_shell(env + "timeout -s KILL " + std::to_string(ms / 1000.0) + " '" + app + "'" +
                                         args + " >/dev/null 2>&1; echo \"status $?\"");
    if (r.out.find("status 0") != std::string::npos) break;  // finished (training and evaluation)
    ASSERT_NE(r.out.find("status 137"), std::string::npos) << "the run failed instead of being killed: " << r.out;
    ++kills;
  }
  ASSERT_LT(runs, 150) << "the run never finished";
  EXPECT_GE(kills, 3) << "too few kills to mean anything; lower the delays";

  const auto a = mmgrad::train::load_safetensors(straight + "/checkpoint.safetensors");
  const auto b = mmgrad::train::load_safetensors(crashed + "/checkpoint.safetensors");
  ASSERT_EQ(a.tensors.size(), b.tensors.size());
  EXPECT_EQ(a.metadata.at("step"), "50");
  EXPECT_EQ(b.metadata.at("step"), "50");
  for (size_t i = 0; i < a.tensors.size(); ++i) {
    ASSERT_EQ(a.tensors[i].first, b.tensors[i].first);
    EXPECT_EQ(mmgrad::to_vector<double>(a.tensors[i].second), mmgrad::to_vector<double>(b.tensors[i].second))
        << a.tensors[i].first << " differs after " << kills << " kills";
  }
  std::printf("killed %d times, resumed, identical\n", kills);
}

}  // namespace
