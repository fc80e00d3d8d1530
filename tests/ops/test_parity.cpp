// Backend parity, in the style of ggml's test-backend-ops: every op case runs on every
// available device and is compared with the CPU result (forward output and the gradient of
// every input) by normalised MSE and by an elementwise bound. Devices are discovered at run
// time (available_devices()), so a CUDA build is picked up without touching these tests:
// Ops/OpDeviceParity.EveryDeviceVsCpu/<case> appears once a device other than the CPU
// works; where only the CPU exists, OpParityDevices.NonCpuBackendsAreCompared skips with a
// message saying why.
//
// The CPU is also checked against itself: the same values laid out non-contiguously
// (transposed, strided, offset, broadcast views with NaN in the gaps) must give the result
// of the contiguous layout, in f32 and in f64.
#include <gtest/gtest.h>

#include <sstream>

#include "tests/ops/op_cases.h"

using namespace mmgrad;
using namespace mmgrad::optest;

namespace {

// Elementwise bound for two runs of the same op at `dtype`: in f32, the case's f32-vs-f64
// tolerance (a backend or a layout may round differently, but not by more than f32 rounding
// itself does); in f64 the same bound scaled by 1e-8 (~5x the ratio of the unit roundoffs,
// 2^-53 / 2^-24). NMSE bounds: 1e-7 in f32 (ggml's default), 1e-20 in f64.
Tolerance scaled(const Tolerance& t, DType dtype) {
  if (dtype == DType::F32) return t;
  return {t.rtol * 1e-8, t.atol * 1e-8};
}
double max_nmse(DType dtype) { return dtype == DType::F32 ? 1e-7 : 1e-20; }

// Compares outcome `got` (described by `what`) with `want`; adds a failure per mismatch.
void expect_same(const OpCase& c, const Outcome& got, const Outcome& want, DType dtype,
                 const std::string& what) {
  Comparison out = compare(got.out, want.out, scaled(c.precision.out, dtype), max_nmse(dtype));
  EXPECT_TRUE(out.ok) << c.name << " " << what << ", output: " << out.message
                      << " [nmse " << out.nmse << ", max abs " << out.max_abs
                      << ", MMGRAD_OPS_SEED=" << base_seed() << "]";
  ASSERT_EQ(got.grads.size(), want.grads.size());
  for (size_t k = 0; k < got.grads.size(); ++k) {
    Comparison g = compare(got.grads[k], want.grads[k], scaled(c.precision.grad, dtype), max_nmse(dtype));
    EXPECT_TRUE(g.ok) << c.name << " " << what << ", gradient of input " << k << ": " << g.message
                      << " [nmse " << g.nmse << ", max abs " << g.max_abs
                      << ", MMGRAD_OPS_SEED=" << base_seed() << "]";
  }
}

Outcome run_variant(const OpCase& c, const std::vector<std::vector<double>>& values, uint64_t seed,
                    DType dtype, Device device, bool noncontiguous) {
  Variant v;
  v.dtype = dtype;
  v.device = device;
  v.noncontiguous = noncontiguous;
  return run_case(c, make_inputs(c, values, v), seed, noncontiguous);
}

const char* dtype_str(DType d) { return d == DType::F32 ? "f32" : "f64"; }

class OpParity : public ::testing::TestWithParam<std::string> {};

TEST_P(OpParity, StridedVsContiguousCpu) {
  const OpCase& c = find_case(GetParam());
  const uint64_t seed = case_seed(c.name);
  const auto values = make_values(c, seed);
  for (DType dtype : {DType::F32, DType::F64}) {
    SCOPED_TRACE(dtype_str(dtype));
    try {
      Outcome want = run_variant(c, values, seed, dtype, Device::cpu(), false);
      Outcome got = run_variant(c, values, seed, dtype, Device::cpu(), true);
      expect_same(c, got, want, dtype, std::string("non-contiguous vs contiguous on cpu, ") + dtype_str(dtype));
    } catch (const std::exception& e) {
      ADD_FAILURE() << c.name << " threw: " << e.what() << " [MMGRAD_OPS_SEED=" << base_seed() << "]";
    }
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpParity, ::testing::ValuesIn(case_names(false)),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// One test per case and device type, instantiated only when a device other than the CPU is
// there (so a CPU-only machine lists a single skipped test instead of one per case).
class OpDeviceParity : public ::testing::TestWithParam<std::string> {};

TEST_P(OpDeviceParity, EveryDeviceVsCpu) {
  const OpCase& c = find_case(GetParam());
  const uint64_t seed = case_seed(c.name);
  const auto values = make_values(c, seed);
  for (DType dtype : {DType::F32, DType::F64}) {
    Outcome want = run_variant(c, values, seed, dtype, Device::cpu(), false);
    for (const Device& d : available_devices()) {
      if (d == Device::cpu()) continue;
      for (bool noncontiguous : {false, true}) {
        std::string what = d.str() + (noncontiguous ? " non-contiguous" : " contiguous") + " vs cpu, " +
                           dtype_str(dtype);
        SCOPED_TRACE(what);
        try {
          Outcome got = run_variant(c, values, seed, dtype, d, noncontiguous);
          expect_same(c, got, want, dtype, what);
        } catch (const std::exception& e) {
          ADD_FAILURE() << c.name << " on " << what << " threw: " << e.what();
        }
      }
    }
  }
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OpDeviceParity);
INSTANTIATE_TEST_SUITE_P(Ops, OpDeviceParity, ::testing::ValuesIn(case_names_for_other_devices(false)),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(OpParityDevices, NonCpuBackendsAreCompared) {
  const std::vector<Device> devices = available_devices();
  ASSERT_FALSE(devices.empty());
  EXPECT_EQ(devices.front(), Device::cpu());
  if (devices.size() == 1) {
    std::ostringstream why;
    for (const std::string& note : unavailable_device_notes()) why << "\n  not available: " << note;
    GTEST_SKIP() << "only the CPU backend is available, so no Ops/OpDeviceParity tests were "
                    "generated; the CPU still runs StridedVsContiguousCpu for every case"
                 << why.str();
  }
  // Every case was instantiated for the devices.
  EXPECT_EQ(case_names_for_other_devices(false).size(), all_op_cases().size());
}

}  // namespace
