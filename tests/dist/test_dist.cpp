// Data parallelism without a second process (the engine's leaf hook, the gradient reducer,
// the row-wise losses against the whole-batch ones), and `mpirun -np 2` runs of the real
// programs: an exact checkpoint-and-resume of `mmgrad train` on 2 ranks, and the errors a
// user gets when ranks disagree, hang or die. The mpirun tests skip when this build has no
// MPI (MPIRUN and DIST_PROBE are set by meson only then).
#include <gtest/gtest.h>

#include <chrono>
#include <cmath>
#include <filesystem>

#include "autograd/engine.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "dist/communicator.h"
#include "dist/grad_reducer.h"
#include "models/losses.h"
#include "tests/core/test_util.h"
#include "train/safetensors.h"

using namespace mmgrad;

namespace {

TEST(DistSingle, LeafHookFiresOnceEachLeafIsCompleteEvenWhenUsedTwice) {
  Tensor a = mmtest::leaf({1, 2}, {2}), b = mmtest::leaf({3, 4}, {2});
  std::vector<std::pair<const TensorImpl*, std::vector<double>>> seen;
  {
    autograd::LeafGradReadyHook hook([&](const TensorImpl* leaf) {
      Tensor g = leaf == &a.impl() ? a.grad() : b.grad();
      seen.emplace_back(leaf, to_vector<double>(g));
    });
    // a is used twice (two AccumulateGrad nodes): its hook must come after both.
    sum(add(mul(a, b), mul(a, 2.0))).backward();
  }
  ASSERT_EQ(seen.size(), 2u);
  for (const auto& [leaf, g] : seen) {
    if (leaf == &a.impl()) EXPECT_EQ(g, (std::vector<double>{5, 6}));  // b + 2, complete
    else EXPECT_EQ(g, (std::vector<double>{1, 2}));
  }
  // Without the hook, nothing is called.
  a.set_grad(Tensor());
  sum(mul(a, a)).backward();
  EXPECT_EQ(seen.size(), 2u);
}

TEST(DistSingle, ReducerOnOneRankLeavesGradientsAsTheyAre) {
  dist::SingleCommunicator one;
  Tensor w = mmtest::leaf({1, 2, 3}, {3}), unused = mmtest::leaf({5}, {1});
  dist::GradReducer reducer(one, {w, unused}, 8);  // 8 bytes: one parameter per bucket
  EXPECT_EQ(reducer.num_buckets(), 2);
  {
    dist::GradReducer::ReadyScope scope(reducer);
    sum(square(w)).backward();
  }
  reducer.finish();
  EXPECT_EQ(to_vector<double>(w.grad()), (std::vector<double>{2, 4, 6}));
  EXPECT_FALSE(unused.grad().defined());  // never reached: stays without a gradient
}

TEST(DistSingle, RowLossesOverTheWholeBatchEqualTheBatchLosses) {
  Generator g(3);
  Tensor img = nn::l2_normalize(randn({6, 4}, DType::F64, Device::cpu(), &g));
  Tensor txt = nn::l2_normalize(randn({6, 4}, DType::F64, Device::cpu(), &g));
  Tensor scale = from_data(std::vector<double>{std::log(10.0)}, {});
  Tensor bias = from_data(std::vector<double>{-2.0}, {});
  EXPECT_NEAR(item(nn::clip_loss_rows(img, txt, img, txt, scale, 0)), item(nn::clip_loss(img, txt, scale)), 1e-12);
  EXPECT_NEAR(item(nn::siglip_loss_rows(img, txt, scale, bias, 0)), item(nn::siglip_loss(img, txt, scale, bias)),
              1e-12);
  // Two halves, as two ranks compute them: their mean is the whole batch's loss.
  auto half = [](const Tensor& t, int k) { return narrow(t, 0, 3 * k, 3); };
  const double clip_halves = (item(nn::clip_loss_rows(half(img, 0), half(txt, 0), img, txt, scale, 0)) +
                              item(nn::clip_loss_rows(half(img, 1), half(txt, 1), img, txt, scale, 3))) / 2;
  EXPECT_NEAR(clip_halves, item(nn::clip_loss(img, txt, scale)), 1e-12);
  const double siglip_halves = (item(nn::siglip_loss_rows(half(img, 0), txt, scale, bias, 0)) +
                                item(nn::siglip_loss_rows(half(img, 1), txt, scale, bias, 3))) / 2;
  EXPECT_NEAR(siglip_halves, item(nn::siglip_loss(img, txt, scale, bias)), 1e-12);
  EXPECT_THROW(nn::clip_loss_rows(half(img, 1), half(txt, 1), img, txt, scale, 4), Error);  // rows past the end
}

TEST(DistSingle, HardNegativesOfRowBlocksAreTheWholeMatrixsDraws) {
  Generator g(5);
  Tensor sim = randn({6, 6}, DType::F64, Device::cpu(), &g);
  const std::vector<int64_t> groups{0, 1, 0, 2, 1, 2};
  Generator a(9), b(9), c(9);
  const std::vector<int64_t> whole = nn::hard_negatives(sim, a, groups);
  std::vector<int64_t> blocks = nn::hard_negatives(narrow(sim, 0, 0, 3), b, groups, 0);
  const std::vector<int64_t> second = nn::hard_negatives(narrow(sim, 0, 3, 3), c, groups, 3);
  blocks.insert(blocks.end(), second.begin(), second.end());
  EXPECT_EQ(blocks, whole);
  for (size_t i = 0; i < whole.size(); ++i) EXPECT_NE(groups[i], groups[static_cast<size_t>(whole[i])]) << i;
}

TEST(DistSingle, UnknownBackendIsAClearError) {
  try {
    dist::world("gloo");
    FAIL() << "an unknown backend was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("unknown backend 'gloo'"), std::string::npos) << e.what();
  }
}

// ---- mpirun -np 2 ----

class MpiRun : public ::testing::Test {
 protected:
  void SetUp() override {
    if (!std::getenv("MPIRUN") || !std::getenv("DIST_PROBE"))
      GTEST_SKIP() << "this build has no MPI (install libopenmpi-dev openmpi-bin and reconfigure)";
    if (!std::getenv("MMGRAD_APP")) GTEST_SKIP() << "MMGRAD_APP is not set";
  }
  // mpirun -np 2 <command>, with the permission Open MPI wants when running as root.
  static mmtest::AppRun mpirun(const std::string& command) {
    std::string cmd = "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 MMGRAD_NUM_THREADS=1 '";
    cmd.append(std::getenv("MPIRUN")).append("' -np 2 --oversubscribe ").append(command).append(" 2>&1");
    return mmtest::run_shell(cmd);
  }
  static std::string app() { return std::string("'") + std::getenv("MMGRAD_APP") + "'"; }
};

const char* kTiny =
    " --set image_size=16 --set patch_size=8 --set vision_width=32 --set text_width=32 --set embed_dim=32"
    " --set vision_layers=1 --set text_layers=1 --set vision_heads=2 --set text_heads=2 --set batch_size=16"
    " --set train_size=2000 --set tokenizer_vocab=300 --set eval_size=40 --set log_every=1 --set steps=6"
    " --set warmup_steps=2 --set bucket_kib=16";

TEST_F(MpiRun, TwoRanksCheckpointAndResumeContinueExactlyAsAnUninterruptedRun) {
  const std::string straight = mmtest::temp_path("dist_straight"), split = mmtest::temp_path("dist_split");
  std::filesystem::remove_all(straight);
  std::filesystem::remove_all(split);
  mmtest::AppRun a = mpirun(app() + " train --run-dir " + straight + kTiny);
  ASSERT_EQ(a.status, 0) << a.out;
  EXPECT_NE(a.out.find("data parallel: 2 ranks (mpi), 8 samples per rank"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("communication:"), std::string::npos) << a.out;
  EXPECT_NE(a.out.find("zero-shot shape accuracy"), std::string::npos) << a.out;  // rank 0 evaluated
  // Rank 0 alone printed: one line per step, not two.
  size_t lines = 0;
  for (size_t at = a.out.find("step 3/6"); at != std::string::npos; at = a.out.find("step 3/6", at + 1)) ++lines;
  EXPECT_EQ(lines, 1u) << a.out;

  mmtest::AppRun b = mpirun(app() + " train --run-dir " + split + kTiny + " --stop-after 3");
  ASSERT_EQ(b.status, 130) << b.out;  // stopped with a checkpoint, as after Ctrl-C
  mmtest::AppRun c = mpirun(app() + " train --resume " + split + "/checkpoint.safetensors");
  ASSERT_EQ(c.status, 0) << c.out;

  const auto x = train::load_safetensors(straight + "/checkpoint.safetensors");
  const auto y = train::load_safetensors(split + "/checkpoint.safetensors");
  ASSERT_EQ(x.tensors.size(), y.tensors.size());
  for (size_t i = 0; i < x.tensors.size(); ++i) {
    ASSERT_EQ(x.tensors[i].first, y.tensors[i].first);
    EXPECT_EQ(to_vector<double>(x.tensors[i].second), to_vector<double>(y.tensors[i].second))
        << x.tensors[i].first << " differs after resume";  // parameters and optimizer state, bit for bit
  }
}

TEST_F(MpiRun, RanksWithDifferentConfigurationsAllStopWithTheDifference) {
  const std::string dir = mmtest::temp_path("dist_mismatch");
  mmtest::AppRun r = mpirun("sh -c '\"$0\" train --run-dir " + dir + kTiny + " --set seed=$OMPI_COMM_WORLD_RANK' " +
                            std::getenv("MMGRAD_APP"));
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("configuration differs between ranks"), std::string::npos) << r.out;
  EXPECT_NE(r.out.find("seed"), std::string::npos) << r.out;
}

TEST_F(MpiRun, AStuckRankEndsTheJobAfterTheTimeoutWithAClearError) {
  const auto t0 = std::chrono::steady_clock::now();
  mmtest::AppRun r = mpirun(std::string("'") + std::getenv("DIST_PROBE") + "' stuck");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("rank 0 of 2: the collective 'all_reduce_sum' did not complete within 2 s"), std::string::npos)
      << r.out;
  EXPECT_LT(s, 30) << "the job should end soon after the 2 s timeout, not wait for the stuck rank (60 s)";
}

TEST_F(MpiRun, ADeadRankEndsTheJobInsteadOfHangingIt) {
  const auto t0 = std::chrono::steady_clock::now();
  mmtest::AppRun r = mpirun(std::string("'") + std::getenv("DIST_PROBE") + "' die");
  const double s = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
  EXPECT_NE(r.status, 0) << r.out;
  EXPECT_EQ(r.out.find("probe ok"), std::string::npos) << r.out;
  EXPECT_LT(s, 30) << r.out;
  // Either Open MPI reports the killed process, or rank 0's timeout names the collective.
  EXPECT_TRUE(r.out.find("signal 9") != std::string::npos || r.out.find("did not complete") != std::string::npos)
      << r.out;
}

TEST_F(MpiRun, ProbeWorksWhenBothRanksJoin) {
  mmtest::AppRun r = mpirun(std::string("'") + std::getenv("DIST_PROBE") + "' ok");
  EXPECT_EQ(r.status, 0) << r.out;
  EXPECT_NE(r.out.find("probe ok: 2"), std::string::npos) << r.out;
}

}  // namespace
