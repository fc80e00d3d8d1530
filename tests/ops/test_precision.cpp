// f32 results against f64 results: every op case runs on the same (f32-representable)
// values in both dtypes; the f32 output and the f32 gradient of every input must be within
// the case's stated tolerance of the f64 ones. The tolerance classes and why each is what it
// is are written next to their definitions in op_cases.cpp:
//   exact            views, copies, indexing, comparisons: output bit-exact, grads 1e-6
//   elementwise      rtol 1e-6, atol 1e-6 (grads 4e-6 / 2e-6)
//   reduction(K)     rtol = atol = 1e-6 sqrt(K)           (sum, mean, var, matmul, linear)
//   normalization(K) rtol = atol = 1e-5 + 2e-6 sqrt(K), grads 2x (softmax, layer_norm,
//                    cross_entropy, attention)
// and f64 results against independent references, at those tolerances times 1e-5.
#include <gtest/gtest.h>

#include <cstdlib>
#include <set>

#include "tests/ops/op_cases.h"

using namespace mmgrad;
using namespace mmgrad::optest;

namespace {

class OpPrecision : public ::testing::TestWithParam<std::string> {};

void check(const OpCase& c, bool noncontiguous) {
  const uint64_t seed = case_seed(c.name);
  const auto values = make_values(c, seed);
  Variant v64;
  v64.dtype = DType::F64;
  Variant v32 = v64;
  v32.dtype = DType::F32;
  v32.noncontiguous = noncontiguous;
  const char* layout = noncontiguous ? " (non-contiguous f32 inputs and upstream gradient)" : "";
  try {
    Outcome want = run_case(c, make_inputs(c, values, v64), seed);
    Outcome got = run_case(c, make_inputs(c, values, v32), seed, noncontiguous);
    Comparison out = compare(got.out, want.out, c.precision.out);
    EXPECT_TRUE(out.ok) << c.name << layout << ", f32 vs f64 output: " << out.message
                        << " [nmse " << out.nmse << ", MMGRAD_OPS_SEED=" << base_seed() << "]";
    if (std::getenv("MMGRAD_OPS_VERBOSE"))
      std::cout << "[precision] " << c.name << layout << " out max_abs " << out.max_abs << " nmse "
                << out.nmse << "\n";
    ASSERT_EQ(got.grads.size(), want.grads.size());
    for (size_t k = 0; k < got.grads.size(); ++k) {
      Comparison g = compare(got.grads[k], want.grads[k], c.precision.grad);
      EXPECT_TRUE(g.ok) << c.name << layout << ", f32 vs f64 gradient of input " << k << ": "
                        << g.message << " [nmse " << g.nmse << ", MMGRAD_OPS_SEED=" << base_seed()
                        << "]";
      if (std::getenv("MMGRAD_OPS_VERBOSE") && got.grads[k].defined())
        std::cout << "[precision] " << c.name << layout << " grad" << k << " max_abs " << g.max_abs
                  << " nmse " << g.nmse << "\n";
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << c.name << layout << " threw: " << e.what() << " [MMGRAD_OPS_SEED=" << base_seed() << "]";
  }
}

TEST_P(OpPrecision, F32VsF64) { check(find_case(GetParam()), false); }
TEST_P(OpPrecision, F32NonContiguousVsF64) { check(find_case(GetParam()), true); }

INSTANTIATE_TEST_SUITE_P(Ops, OpPrecision, ::testing::ValuesIn(case_names(false)),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// f64 results against an independent reference (host loops in double, or a composition of
// simpler ops whose gradients come from other backward formulas): the harnesses above
// compare mmgrad with itself, this one checks that the values are the right ones.
class OpReference : public ::testing::TestWithParam<std::string> {};

TEST_P(OpReference, F64VsReference) {
  const OpCase& c = find_case(GetParam());
  OpCase ref = c;
  ref.fn = c.reference;
  const uint64_t seed = case_seed(c.name);
  const auto values = make_values(c, seed);
  Variant v;
  v.dtype = DType::F64;
  try {
    Outcome got = run_case(c, make_inputs(c, values, v), seed);
    Outcome want = run_case(ref, make_inputs(c, values, v), seed);
    Comparison out = compare(got.out, want.out, reference_tolerance(c.precision.out));
    EXPECT_TRUE(out.ok) << c.name << ", f64 output vs reference: " << out.message
                        << " [MMGRAD_OPS_SEED=" << base_seed() << "]";
    for (size_t k = 0; k < got.grads.size(); ++k) {
      if (!want.grads[k].defined()) continue;  // host references have no gradient
      Comparison g = compare(got.grads[k], want.grads[k], reference_tolerance(c.precision.grad));
      EXPECT_TRUE(g.ok) << c.name << ", f64 gradient of input " << k << " vs reference: "
                        << g.message << " [MMGRAD_OPS_SEED=" << base_seed() << "]";
    }
  } catch (const std::exception& e) {
    ADD_FAILURE() << c.name << " threw: " << e.what() << " [MMGRAD_OPS_SEED=" << base_seed() << "]";
  }
}

INSTANTIATE_TEST_SUITE_P(Ops, OpReference, ::testing::ValuesIn(reference_case_names()),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

TEST(OpReferenceCoverage, ComputeOpsHaveAReference) {
  const std::vector<std::string> must = {
      "neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "pow", "square", "reciprocal", "tanh",
      "sigmoid", "relu", "gelu", "quick_gelu", "erf", "add", "sub", "mul", "div", "maximum",
      "minimum", "add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "maximum_scalar",
      "minimum_scalar", "eq", "ne", "lt", "le", "gt", "ge", "eq_scalar", "ne_scalar",
      "lt_scalar", "le_scalar", "gt_scalar", "ge_scalar", "where", "where_scalar", "sum", "mean",
      "var", "amax", "amin", "max", "min", "argmax", "argmin", "sum_to", "matmul", "linear",
      "softmax", "log_softmax", "layer_norm", "cross_entropy", "scaled_dot_product_attention",
      "dropout", "embedding", "patch_embed", "index_select", "gather"};
  std::set<std::string> have;
  for (const OpCase& c : all_op_cases())
    if (c.reference) have.insert(c.ops.begin(), c.ops.end());
  for (const std::string& op : must) EXPECT_TRUE(have.count(op)) << op << " has no reference case";
}

}  // namespace
