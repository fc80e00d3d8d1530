// The CUDA backend's own behaviour: transfers, the caching allocator, device-side errors,
// random draws matching the CPU, TF32. (Every op against the CPU: tests/ops/test_parity.cpp;
// gradients on CUDA: tests/ops/test_gradcheck.cpp; a whole model: tests/models/
// test_cuda_model.cpp.) Without a GPU, or in a build without CUDA, each test skips and says
// why.
#include <gtest/gtest.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "tests/core/gpu_test_util.h"
#include "tests/core/test_util.h"

#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/cuda.h"
#endif

using namespace mmgrad;

namespace {

#ifndef MMGRAD_HAVE_CUDA
MMGRAD_TEST_NEEDS_CUDA_BUILD(Cuda)
#else

const Device kGpu = Device::cuda(0);

TEST(Cuda, RoundTripsEveryDtypeExactly) {
  MMGRAD_REQUIRE_GPU();
  Generator gen(3);
  Tensor x = randn({5, 7}, DType::F64, Device::cpu(), &gen);
  for (DType dt : {DType::F32, DType::F64, DType::BF16, DType::I32, DType::I64, DType::Bool}) {
    Tensor host = x.to(dt);
    Tensor back = host.to(kGpu).to(Device::cpu());
    EXPECT_EQ(back.device(), Device::cpu());
    EXPECT_EQ(to_vector<double>(back), to_vector<double>(host)) << dtype_name(dt);
  }
}

TEST(Cuda, CopiesStridedViewsAndConvertsAcrossDevices) {
  MMGRAD_REQUIRE_GPU();
  Generator gen(4);
  Tensor x = randn({6, 9}, DType::F32, Device::cpu(), &gen);
  Tensor t = x.transpose(0, 1).narrow(0, 1, 5);  // non-contiguous, offset
  EXPECT_EQ(to_vector<float>(t.to(kGpu)), to_vector<float>(t.contiguous()));
  // A strided GPU view back to the host, converted to f64 on the way.
  Tensor g = x.to(kGpu).transpose(0, 1).narrow(0, 1, 5);
  EXPECT_EQ(to_vector<double>(g), to_vector<double>(t));
  // copy_ into a strided GPU destination of another dtype.
  Tensor dst = zeros({9, 6}, DType::F64, kGpu).transpose(0, 1);
  {
    NoGradGuard no_grad;
    copy_(dst, x);
  }
  EXPECT_EQ(to_vector<double>(dst), to_vector<double>(x));
}

TEST(Cuda, RandomDrawsMatchTheCpu) {
  MMGRAD_REQUIRE_GPU();
  Generator a(11), b(11);
  Tensor cpu_n = randn({1000}, DType::F64, Device::cpu(), &a);
  Tensor gpu_n = randn({1000}, DType::F64, kGpu, &b);
  EXPECT_TRUE(allclose(gpu_n, cpu_n, 1e-14, 1e-14));
  Tensor cpu_u = rand({1000}, DType::F32, Device::cpu(), &a);
  Tensor gpu_u = rand({1000}, DType::F32, kGpu, &b);
  EXPECT_EQ(to_vector<float>(gpu_u), to_vector<float>(cpu_u));
}

TEST(Cuda, CachingAllocatorReusesFreedBlocks) {
  MMGRAD_REQUIRE_GPU();
  cuda::synchronize();
  {
    Tensor a = empty({1 << 20}, DType::F32, kGpu);
    Tensor b = empty({1000}, DType::F32, kGpu);
  }
  const auto before = cuda::device_memory_stats();
  for (int i = 0; i < 50; ++i) {
    Tensor a = empty({1 << 20}, DType::F32, kGpu);  // 4 MiB, large pool
    Tensor b = empty({1000}, DType::F32, kGpu);     // small pool
  }
  const auto after = cuda::device_memory_stats();
  EXPECT_EQ(after.malloc_calls, before.malloc_calls) << "a loop of same-sized tensors must be served from the cache";
  EXPECT_EQ(after.in_use, before.in_use);
  // A freed large block is split for smaller requests.
  cuda::reset_peak_device_memory();
  {
    Tensor big = empty({6 << 20}, DType::F32, kGpu);  // 24 MiB
  }
  const auto mid = cuda::device_memory_stats();
  {
    Tensor p = empty({2 << 20}, DType::F32, kGpu), q = empty({2 << 20}, DType::F32, kGpu);
    EXPECT_EQ(cuda::device_memory_stats().malloc_calls, mid.malloc_calls);
  }
  EXPECT_GE(cuda::device_memory_stats().peak_in_use, size_t{24} << 20);
}

TEST(Cuda, OutOfMemoryIsAClearErrorAndTheCacheIsRetried) {
  MMGRAD_REQUIRE_GPU();
  cuda::synchronize();
  cuda::empty_device_cache();
  const auto s = cuda::device_memory_stats();
  cuda::set_device_memory_limit(s.reserved + (64 << 20));
  mmtest::expect_error([&] { Tensor t = empty({256 << 20}, DType::F32, kGpu); }, "cuda allocate",
                       {"out of memory on cuda:0", "asked for 1024.0 MiB", "limit"});
  // Within the limit after the cache is given back: works.
  { Tensor ok = empty({8 << 20}, DType::F32, kGpu); }
  cuda::set_device_memory_limit(0);
  Tensor after = ones({4}, DType::F32, kGpu);
  EXPECT_EQ(item(sum(after)), 4.0);
}

TEST(Cuda, BadIndicesAreReportedAtTheNextSynchronisation) {
  MMGRAD_REQUIRE_GPU();
  Tensor table = ones({4, 3}, DType::F32, kGpu);
  Tensor ids = from_data(std::vector<int64_t>{1, 7}, {2}, kGpu);
  mmtest::expect_error([&] { (void)to_vector<float>(index_select(table, 0, ids)); }, "index_select",
                       {"index 7 is out of range for a dimension of size 4"});
  // Reported once; the device keeps working.
  EXPECT_EQ(item(sum(table)), 12.0);
  Tensor logits = zeros({2, 3}, DType::F32, kGpu);
  Tensor target = from_data(std::vector<int64_t>{0, 5}, {2}, kGpu);
  mmtest::expect_error([&] { (void)item(cross_entropy(logits, target)); }, "cross_entropy",
                       {"target 5 is out of range for 3 classes"});
}

TEST(Cuda, MatmulPrecisionTradesBitsForSpeedWithinItsRounding) {
  MMGRAD_REQUIRE_GPU();
  Generator gen(5);
  Tensor a = randn({256, 256}, DType::F32, Device::cpu(), &gen), b = randn({256, 256}, DType::F32, Device::cpu(), &gen);
  Tensor want = matmul(a.to(DType::F64), b.to(DType::F64));
  const auto was = cuda::matmul_precision();
  // Max error over the product, relative to sqrt(K) (the size of an entry): f32 ~1e-6,
  // tf32 (10-bit mantissa) ~1e-3, bf16 (7-bit) ~1e-2; each bound several times the typical.
  auto error = [&](cuda::MatmulPrecision p) {
    cuda::set_matmul_precision(p);
    std::vector<double> got = to_vector<double>(matmul(a.to(kGpu), b.to(kGpu))), ref = to_vector<double>(want);
    double e = 0;
    for (size_t i = 0; i < got.size(); ++i) e = std::max(e, std::abs(got[i] - ref[i]));
    return e / 16.0;
  };
  const double e32 = error(cuda::MatmulPrecision::F32), etf = error(cuda::MatmulPrecision::TF32),
               ebf = error(cuda::MatmulPrecision::BF16);
  cuda::set_matmul_precision(was);
  EXPECT_LT(e32, 1e-5);
  EXPECT_LT(etf, 5e-3);
  EXPECT_LT(ebf, 4e-2);
  EXPECT_GT(ebf, e32) << "bf16 must actually round its inputs";
  EXPECT_EQ(cuda::parse_matmul_precision("bf16"), cuda::MatmulPrecision::BF16);
  mmtest::expect_error([] { cuda::parse_matmul_precision("fp8"); }, "matmul_precision", {"unknown matmul precision 'fp8'"});
}

TEST(Cuda, ProfileIsOffUnlessAsked) {
  MMGRAD_REQUIRE_GPU();
  if (cuda::profiling()) GTEST_SKIP() << "MMGRAD_CUDA_PROFILE=1 is set";
  EXPECT_NE(cuda::profile_report().find("off"), std::string::npos);
}

TEST(Cuda, MixingDevicesInOneOpIsAnError) {
  MMGRAD_REQUIRE_GPU();
  Tensor a = ones({3}, DType::F32, kGpu), b = ones({3});
  EXPECT_THROW(add(a, b), Error);
}

#endif  // MMGRAD_HAVE_CUDA

}  // namespace
