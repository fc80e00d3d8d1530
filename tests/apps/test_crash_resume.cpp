// Kill -9 at random moments of `mmgrad train` (checkpoints every step, so some kills land in
// the middle of a checkpoint write), resume from the run folder each time until the run
// completes: the final parameters and optimizer state must be bit-identical to an
// uninterrupted run's. The kills follow the run's progress (a random number of steps
// ahead, then a random 0-25 ms), so there are as many on a slow machine as on a fast one.
#include <gtest/gtest.h>

#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <fstream>
#include <random>
#include <thread>

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

extern "C" char** environ;

size_t metric_lines(const std::string& dir) {
  std::ifstream in(dir + "/metrics.jsonl");
  size_t n = 0;
  std::string line;
  while (std::getline(in, line)) ++n;
  return n;
}

// Runs `command` (through sh, exec'd so the pid is mmgrad's) and SIGKILLs it once the
// metrics file has `kill_at` lines, after `extra_ms`. Returns the exit status (-9 when killed).
int run_and_kill(const std::string& command, const std::string& dir, size_t kill_at, int extra_ms) {
  const std::string line = "exec " + command + " >/dev/null 2>&1";
  char* argv[] = {const_cast<char*>("sh"), const_cast<char*>("-c"), const_cast<char*>(line.c_str()), nullptr};
  pid_t pid = 0;
  if (posix_spawn(&pid, "/bin/sh", nullptr, nullptr, argv, environ) != 0) return -1;
  int status = 0;
  while (waitpid(pid, &status, WNOHANG) == 0) {
    if (metric_lines(dir) >= kill_at) {
      std::this_thread::sleep_for(std::chrono::milliseconds(extra_ms));
      kill(pid, SIGKILL);
      waitpid(pid, &status, 0);
      break;
    }
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  }
  return WIFSIGNALED(status) ? -WTERMSIG(status) : WEXITSTATUS(status);
}

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
  const std::string env = "env MMGRAD_NUM_THREADS=1 ";
  mmtest::AppRun s = mmtest::run_shell(env + "'" + app + "' train --run-dir " + straight + kTiny + " 2>&1");
  ASSERT_EQ(s.status, 0) << s.out;

  std::mt19937 rng(12345);
  std::uniform_int_distribution<int> ahead(2, 9), extra_ms(0, 25);
  int kills = 0, runs = 0;
  for (; runs < 60; ++runs) {
    const std::string args = has_checkpoint(crashed) ? " train --resume " + crashed : " train --run-dir " + crashed + kTiny;
    const size_t target = metric_lines(crashed) + static_cast<size_t>(ahead(rng));
    const int status = run_and_kill(env + "'" + app + "'" + args, crashed, target, extra_ms(rng));
    if (status == 0) break;  // finished (training and evaluation)
    ASSERT_EQ(status, -SIGKILL) << "the run failed instead of being killed (exit status " << status << ")";
    ++kills;
  }
  ASSERT_LT(runs, 60) << "the run never finished";
  EXPECT_GE(kills, 4);
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

namespace {

std::string file_bytes(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  return {std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>()};
}

// Running out of host memory mid-run (forced with MMGRAD_CPU_MEMORY_LIMIT_MB, which fails
// allocations through the same path as a refused malloc) is a clear error; the checkpoint
// already written is untouched, and the run resumes from it once memory is there.
TEST(CrashResume, RunningOutOfMemoryIsAClearErrorAndTheCheckpointSurvives) {
  const char* app = std::getenv("MMGRAD_APP");
  if (!app) GTEST_SKIP() << "MMGRAD_APP is not set";
  const std::string dir = mmtest::temp_path("oom_run");
  fs::remove_all(dir);
  const std::string base = std::string("env MMGRAD_NUM_THREADS=1 '") + app + "'";
  mmtest::AppRun first = mmtest::run_shell(base + " train --run-dir " + dir + kTiny + " --stop-after 3 2>&1");
  ASSERT_EQ(first.status, 130) << first.out;  // --stop-after ends as Ctrl-C does
  const std::string saved = file_bytes(dir + "/checkpoint.safetensors");
  ASSERT_FALSE(saved.empty());

  mmtest::AppRun starved = mmtest::run_shell("MMGRAD_CPU_MEMORY_LIMIT_MB=1 " + base + " train --resume " + dir + " 2>&1");
  EXPECT_EQ(starved.status, 1) << starved.out;
  EXPECT_NE(starved.out.find("out of memory: could not allocate"), std::string::npos) << starved.out;
  EXPECT_NE(starved.out.find("MMGRAD_CPU_MEMORY_LIMIT_MB"), std::string::npos) << starved.out;
  EXPECT_EQ(file_bytes(dir + "/checkpoint.safetensors"), saved) << "the failed run changed the checkpoint";

  mmtest::AppRun resumed = mmtest::run_shell(base + " train --resume " + dir + " --stop-after 5 2>&1");
  EXPECT_EQ(resumed.status, 130) << resumed.out;
  EXPECT_EQ(mmgrad::train::load_safetensors(dir + "/checkpoint.safetensors").metadata.at("step"), "5");
}

}  // namespace
