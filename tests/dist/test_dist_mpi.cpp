// Data-parallel training on 2 ranks against one process, run under `mpirun -np 2` (meson
// test 'dist-mpi'): the collectives, the gather-with-gradient op, and whole training steps
// (CLIP, SigLIP, CLIP + ITM + caption, with gradient accumulation) where 2 ranks with half
// the batch each must give the loss and the updated parameters of 1 rank with the whole
// batch. Each rank computes that reference itself, in-process, with no communicator.
//
// The models run in f64, so that what is compared is the algorithm (which rows, which
// negatives, which normalisation), not float rounding: the tolerance is 1e-9 relative.
#include <gtest/gtest.h>

#include <cmath>
#include <filesystem>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/blas_info.h"
#include "dist/collective_ops.h"
#include "dist/communicator.h"
#include "tests/core/test_util.h"
#include "tests/train/tiny_config.h"
#include "train/trainer.h"

using namespace mmgrad;
using namespace mmgrad::train;

namespace {

dist::Communicator& comm() { return dist::world("mpi"); }

TEST(DistMpi, RunsOnTwoRanks) {
  EXPECT_EQ(comm().size(), 2) << "run this test as: mpirun -np 2 test_dist_mpi";
  EXPECT_EQ(comm().name(), "mpi");
}

TEST(DistMpi, AllReduceGatherScatterBroadcast) {
  const int r = comm().rank(), n = comm().size();
  Tensor a = from_data(std::vector<double>{1.0 + r, 10.0 * r}, {2});
  const uint64_t version = a.version();
  comm().all_reduce_sum(a);
  EXPECT_EQ(to_vector<double>(a), (std::vector<double>{1.0 * n + n * (n - 1) / 2.0, 10.0 * n * (n - 1) / 2.0}));
  // Written in place: the version moves, so saved tensors and rounded copies see the change.
  EXPECT_GT(a.version(), version);

  // Two asynchronous reductions in flight at once complete in order with the right values.
  Tensor f = from_data(std::vector<float>{static_cast<float>(r), 1.f, 2.f}, {3});
  Tensor i = from_data(std::vector<int64_t>{r + 1}, {1});
  auto wf = comm().all_reduce_sum_async(f);
  auto wi = comm().all_reduce_sum_async(i);
  wi->wait();
  wf->wait();
  EXPECT_EQ(to_vector<float>(f), (std::vector<float>{1.f, 2.f, 4.f}));
  EXPECT_EQ(to_vector<int64_t>(i), (std::vector<int64_t>{3}));

  Tensor rows = from_data(std::vector<float>{static_cast<float>(r), static_cast<float>(r) + 0.5f}, {1, 2});
  Tensor all = comm().all_gather(rows);
  EXPECT_EQ(all.shape(), (Shape{2, 2}));
  EXPECT_EQ(to_vector<float>(all), (std::vector<float>{0.f, 0.5f, 1.f, 1.5f}));

  // reduce_scatter: rank r keeps row r of the sum.
  Tensor big = from_data(std::vector<double>{1.0 * r, 2.0, 3.0, 4.0 * r}, {2, 2});
  Tensor mine = comm().reduce_scatter_sum(big);
  EXPECT_EQ(to_vector<double>(mine), r == 0 ? (std::vector<double>{1.0, 4.0}) : (std::vector<double>{6.0, 4.0}));

  Tensor b = from_data(std::vector<float>{r == 0 ? 7.f : -1.f}, {1});
  const uint64_t b_version = b.version();
  comm().broadcast(b, 0);
  EXPECT_EQ(item(b), 7.0);
  EXPECT_GT(b.version(), b_version);

  const auto bytes = comm().all_gather_bytes(std::string(static_cast<size_t>(r + 1), 'x'));
  ASSERT_EQ(bytes.size(), 2u);
  EXPECT_EQ(bytes[0], "x");
  EXPECT_EQ(bytes[1], "xx");
  EXPECT_EQ(dist::broadcast_string(comm(), r == 0 ? "rank zero" : "other"), "rank zero");
  comm().barrier();
}

TEST(DistMpi, DifferentValuesOnRanksFailOnEveryRank) {
  dist::check_same_on_all_ranks(comm(), "configuration", "{\"steps\": 5}");  // the same: passes
  try {
    dist::check_same_on_all_ranks(comm(), "configuration", comm().rank() == 0 ? "{\"seed\": 0}" : "{\"seed\": 1}");
    FAIL() << "a differing configuration was accepted";
  } catch (const Error& e) {
    EXPECT_NE(std::string(e.what()).find("configuration differs between ranks"), std::string::npos) << e.what();
    EXPECT_NE(std::string(e.what()).find("seed"), std::string::npos) << e.what();
  }
}

TEST(DistMpi, GatherWithGradSendsEveryRanksGradientToTheOwner) {
  // loss_r = sum(w_r * gather(x)); d(sum_r loss_r)/dx_s = sum_r w_r[rows of s].
  const int r = comm().rank();
  Tensor x = from_data(std::vector<double>{1.0 + r, 2.0 + r}, {1, 2});
  x.set_requires_grad();
  Tensor g = dist::all_gather_with_grad(comm(), x);
  EXPECT_EQ(to_vector<double>(g.detach()), (std::vector<double>{1, 2, 2, 3}));
  Tensor w = from_data(std::vector<double>{1.0 + r, 2.0, 3.0 * (r + 1), 4.0}, {2, 2});
  sum(mul(g, w)).backward();
  // Row 0 (rank 0's): weights (1, 2) on rank 0 and (2, 2) on rank 1; row 1 (rank 1's):
  // (3, 4) and (6, 4).
  EXPECT_EQ(to_vector<double>(x.grad()), r == 0 ? (std::vector<double>{3, 4}) : (std::vector<double>{9, 8}));
}

// ---- Whole training steps: 2 ranks x B/2 against 1 x B ----

RunConfig tiny_config() {
  RunConfig c = mmtest::tiny_training_config();
  c.steps = 3, c.warmup_steps = 1;
  c.log_every = 1, c.checkpoint_every = 100;
  c.bucket_kib = 4;  // several buckets even for this small model
  return c;
}

// Deterministic samples by global position; captions of different lengths (so the caption
// loss's global token count matters) and three content groups (ITM negatives avoid a group).
Batch synthetic_batch(int64_t first, int64_t count, const RunConfig& c) {
  std::vector<Tensor> per_sample;
  std::vector<int64_t> ids, groups;
  for (int64_t b = 0; b < count; ++b) {
    const int64_t pos = first + b;
    Generator g(1000 + static_cast<uint64_t>(pos));
    per_sample.push_back(randn({1, 3, c.model.image_size, c.model.image_size}, DType::F64, Device::cpu(), &g));
    const int64_t eot = 2 + pos % 5;
    for (int64_t t = 0; t < c.model.context_length; ++t)
      ids.push_back(t == 0 ? 17 : t < eot ? (pos * 3 + t * 7) % 17 : t == eot ? 18 : 19);
    groups.push_back(pos % 3);
  }
  return {concat(per_sample, 0), from_data(ids, {count, c.model.context_length}), groups};
}

struct StepResult {
  std::vector<double> losses;  // per step, from the metrics file or the summary
  std::vector<double> params;
};

std::string fresh_dir(const std::string& name) {
  const std::string d = mmtest::temp_path(name + "_rank" + std::to_string(comm().rank()));
  std::filesystem::remove_all(d);
  std::filesystem::create_directories(d);
  return d;
}

StepResult train(const RunConfig& c, dist::Communicator* with, const std::string& name) {
  Generator init(c.seed);
  nn::ClipModel model(c.model, init);
  model.to(DType::F64);
  TrainOptions o;
  o.run_dir = fresh_dir(name);
  o.print_steps = false;
  o.comm = with;
  StepResult r;
  const TrainSummary s =
      train_model(model, c, [c](int64_t f, int64_t n) { return synthetic_batch(f, n, c); }, o);
  r.losses.push_back(s.final_loss);
  for (const auto& [pname, p] : model.named_parameters())
    for (double v : to_vector<double>(p)) r.params.push_back(v);
  return r;
}

void expect_same_training(const RunConfig& c, const std::string& name) {
  const StepResult one = train(c, nullptr, name + "_single");
  const StepResult two = train(c, &comm(), name + "_dist");
  ASSERT_EQ(one.params.size(), two.params.size());
  EXPECT_NEAR(two.losses[0], one.losses[0], 1e-9 * std::abs(one.losses[0])) << name;
  // Relative 1e-9, plus 1e-10 absolute: biases whose gradient is zero in exact arithmetic
  // (k_proj's: softmax ignores a constant shift) get rounding-noise gradients that AdamW
  // turns into steps of about lr * noise / eps, ~1e-12, different for any summation order.
  double worst = 0;
  size_t worst_at = 0;
  for (size_t k = 0; k < one.params.size(); ++k) {
    const double d = std::abs(one.params[k] - two.params[k]) / (1e-10 + 1e-9 * std::abs(one.params[k]));
    if (d > worst) worst = d, worst_at = k;
  }
  EXPECT_LT(worst, 1.0) << name << ": parameter " << worst_at << " is " << two.params[worst_at] << " on 2 ranks and "
                         << one.params[worst_at] << " on 1";
  // The parameters are identical on both ranks (bit for bit).
  Tensor mine = from_data(two.params, {static_cast<int64_t>(two.params.size())});
  Tensor all = comm().all_gather(mine.reshape({1, -1}));
  const std::vector<double> both = to_vector<double>(all);
  const size_t n = two.params.size();
  EXPECT_TRUE(std::equal(both.begin(), both.begin() + static_cast<std::ptrdiff_t>(n),
                         both.begin() + static_cast<std::ptrdiff_t>(n)))
      << name << ": the ranks' parameters differ";
}

TEST(DistMpi, ClipStepMatchesOneProcessWithTheWholeBatch) {
  RunConfig c = tiny_config();
  c.w_itm = 0, c.w_caption = 0;
  expect_same_training(c, "clip");
}

TEST(DistMpi, SiglipStepMatchesOneProcessWithTheWholeBatch) {
  RunConfig c = tiny_config();
  c.model.contrastive = "siglip";
  c.w_itm = 0, c.w_caption = 0;
  expect_same_training(c, "siglip");
}

TEST(DistMpi, ClipItmCaptionStepsMatchOneProcessWithTheWholeBatch) {
  expect_same_training(tiny_config(), "fusion");  // hard negatives from the global batch, groups respected
}

TEST(DistMpi, GradientAccumulationMatchesOneProcess) {
  RunConfig c = tiny_config();
  c.accum_steps = 2;  // 2 micro-batches of 4, each split over the 2 ranks
  expect_same_training(c, "accum");
}

}  // namespace

int main(int argc, char** argv) {
  mmgrad::ensure_blas_kernels(argc, argv);
  ::testing::InitGoogleTest(&argc, argv);
  mmgrad::dist::Communicator& c = mmgrad::dist::world("mpi");
  c.set_timeout(120);  // a failed assertion on one rank must not hang the other for long
  // Only rank 0 prints GoogleTest's report; every rank's failures still fail the job.
  if (c.rank() != 0) {
    auto& listeners = ::testing::UnitTest::GetInstance()->listeners();
    delete listeners.Release(listeners.default_result_printer());
  }
  const int failed = RUN_ALL_TESTS();
  Tensor f = from_data(std::vector<int64_t>{failed}, {1});
  c.all_reduce_sum(f);
  if (c.rank() == 0 && item(f) > failed) std::fprintf(stderr, "test_dist_mpi: another rank had failures\n");
  return item(f) > 0 ? 1 : 0;
}
