// CUDA graphs (backends/cuda/graph.h): a recorded stretch of GPU work replays on new inputs,
// its memory stays its own, what may not be recorded is a clear error that leaves the device
// usable, and device-side errors inside a replay are reported like any other. Without a GPU,
// or in a build without CUDA, each test skips and says why.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#include "backends/cuda/graph.h"
#endif

using namespace mmgrad;

namespace {

#ifndef MMGRAD_HAVE_CUDA
MMGRAD_TEST_NEEDS_CUDA_BUILD(CudaGraph)
#else

const Device kGpu = Device::cuda(0);

// relu(2 x + 1) @ w, summed per row: elementwise kernels, a cuBLAS product and a reduction.
Tensor small_program(const Tensor& x, const Tensor& w) { return sum(matmul(relu(add(mul(x, 2.0), 1.0)), w), {1}); }

TEST(CudaGraph, ReplayRunsTheRecordedKernelsOnNewInputs) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  Generator gen(1);
  Tensor x = randn({64, 32}, DType::F32, kGpu, &gen);
  Tensor w = randn({32, 16}, DType::F32, kGpu, &gen);
  Tensor out;
  cuda::Graph g = cuda::capture_graph([&] { out = small_program(x, w); }, "a small program");
  EXPECT_FALSE(g.empty());
  EXPECT_GE(g.nodes(), 4);
  for (int round = 0; round < 3; ++round) {
    Tensor fresh = randn({64, 32}, DType::F32, kGpu, &gen);
    copy_(x, fresh);
    g.replay();
    EXPECT_EQ(to_vector<float>(out), to_vector<float>(small_program(fresh, w))) << "round " << round;
  }
}

TEST(CudaGraph, HostTransfersInsideTheCaptureAreClearErrorsAndTheDeviceStaysUsable) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  Tensor x = ones({8}, DType::F32, kGpu);
  mmtest::expect_error([&] { cuda::capture_graph([&] { (void)item(sum(x)); }, "a step that reads back"); },
                       "cuda graph", {"capturing a step that reads back failed", "read back to the host"});
  mmtest::expect_error([&] { cuda::capture_graph([&] { (void)from_data<float>({1, 2}, {2}, kGpu); }, "an upload"); },
                       "cuda graph", {"host values"});
  mmtest::expect_error([&] { cuda::capture_graph([&] { cuda::synchronize(); }, "a wait"); }, "cuda graph",
                       {"inside a CUDA graph capture"});
  EXPECT_FALSE(cuda::capturing());
  EXPECT_EQ(item(sum(x)), 8.0);  // the stream is out of capture mode and works
  cuda::Graph ok = cuda::capture_graph([&] { mul_(x, 3.0); }, "a scale");
  ok.replay();
  EXPECT_EQ(item(sum(x)), 24.0);
}

TEST(CudaGraph, ItsMemoryIsItsOwnUntilItIsReleased) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  const int64_t n = 1 << 18;
  // `before` is allocated outside the graph and released inside it: every replay reads it
  // again, so its block must not be handed out while the graph exists.
  Tensor before = full({n}, 3.0, DType::F32, kGpu);
  Tensor out;
  cuda::Graph g = cuda::capture_graph(
      [&] {
        Tensor temp = add(before, 1.0);  // the graph's own temporary, freed inside it
        out = mul(temp, 2.0);
        before = Tensor();
      },
      "a program with temporaries");
  // Eager tensors of the same sizes, made after the capture, must not share its blocks.
  std::vector<Tensor> eager;
  for (int i = 0; i < 6; ++i) eager.push_back(full({n}, 5.0, DType::F32, kGpu));
  g.replay();
  EXPECT_EQ(item(amin(out)), 8.0);
  EXPECT_EQ(item(amax(out)), 8.0);
  for (const Tensor& e : eager) EXPECT_EQ(item(amin(e)), 5.0);
  // Released: its memory serves eager allocations again, and nothing was lost.
  const auto held = cuda::device_memory_stats();
  g = cuda::Graph();
  out = Tensor();
  const auto released = cuda::device_memory_stats();
  EXPECT_LT(released.in_use, held.in_use);
  for (int i = 0; i < 4; ++i) {
    Tensor t = full({n}, 1.0, DType::F32, kGpu);
    EXPECT_EQ(item(sum(t)), static_cast<double>(n));
  }
  EXPECT_EQ(cuda::device_memory_stats().malloc_calls, released.malloc_calls) << "the released pool serves them";
}

TEST(CudaGraph, DeviceSideErrorsInAReplayAreReportedAtTheNextSynchronisation) {
  MMGRAD_REQUIRE_GPU();
  NoGradGuard no_grad;
  Tensor table = ones({4, 3}, DType::F32, kGpu);
  Tensor ids = from_data(std::vector<int64_t>{1, 2}, {2}, kGpu);
  Tensor picked;
  cuda::Graph g = cuda::capture_graph([&] { picked = index_select(table, 0, ids); }, "a gather");
  g.replay();
  EXPECT_EQ(item(sum(picked)), 6.0);
  copy_(ids, from_data(std::vector<int64_t>{1, 9}, {2}));
  g.replay();
  mmtest::expect_error([&] { cuda::synchronize(); }, "index_select", {"index 9 is out of range"});
  EXPECT_EQ(item(sum(table)), 12.0);
}

TEST(CudaGraph, AssertionsRunOnTheDeviceAndReportAtTheNextSynchronisation) {
  MMGRAD_REQUIRE_GPU();
  Tensor ids = from_data(std::vector<int64_t>{3, 1, 4, 1}, {4}, kGpu);
  assert_all(gt(ids, 0.0), "check", "all positive");
  cuda::synchronize();
  assert_all(gt(ids, 2.0), "my_check", "every id above 2");
  mmtest::expect_error([&] { cuda::synchronize(); }, "my_check", {"every id above 2", "found on cuda:0"});
  // Inside a graph too: recorded, then failing on the replay whose data breaks it.
  Tensor lo = full({}, 0.0, DType::I64, kGpu);
  cuda::Graph g = cuda::capture_graph([&] { assert_all(gt(ids, lo), "graph_check", "ids above the bound"); },
                                      "an assertion");
  g.replay();
  cuda::synchronize();
  fill_(lo, 3.0);
  g.replay();
  mmtest::expect_error([&] { cuda::synchronize(); }, "graph_check", {"ids above the bound"});
}

TEST(CudaGraph, ArangeIsFilledOnTheDevice) {
  MMGRAD_REQUIRE_GPU();
  for (DType dt : {DType::F32, DType::F64, DType::I64, DType::I32, DType::BF16}) {
    EXPECT_EQ(to_vector<double>(arange(-3, 7, 0.5, dt, kGpu)), to_vector<double>(arange(-3, 7, 0.5, dt)))
        << dtype_name(dt);
  }
}
#endif

}  // namespace
