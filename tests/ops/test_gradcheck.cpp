// Gradients of every differentiable op case against central finite differences in float64
// (mmgrad::gradcheck), on contiguous and on non-contiguous (transposed, strided, offset)
// inputs with fresh random values; plus the checks that keep the op table complete and the
// harness honest.
#include <gtest/gtest.h>

#include <algorithm>
#include <set>

#include "autograd/gradcheck.h"
#include "tests/ops/op_cases.h"

using namespace mmgrad;
using namespace mmgrad::optest;

namespace {

void run_gradcheck(const OpCase& c, bool noncontiguous, Device device = Device::cpu()) {
  const uint64_t seed = case_seed(c.name) + (noncontiguous ? 1 : 0);
  Variant v;
  v.device = device;
  v.dtype = DType::F64;
  v.noncontiguous = noncontiguous;
  v.allow_expanded_grad = false;
  std::vector<Tensor> inputs = make_inputs(c, make_values(c, seed), v);
  GradcheckOptions options;
  options.eps = c.gc_eps;
  options.atol = c.gc_atol;
  options.rtol = c.gc_rtol;
  options.seed = seed;
  try {
    GradcheckResult r = gradcheck(c.fn, inputs, options);
    EXPECT_TRUE(r.ok) << c.name << " on " << device.str() << (noncontiguous ? " (non-contiguous inputs)" : "")
                      << ": " << r.message << " [max abs error " << r.max_abs_error
                      << "; reproduce with MMGRAD_OPS_SEED=" << base_seed() << "]";
  } catch (const std::exception& e) {
    ADD_FAILURE() << c.name << " on " << device.str() << (noncontiguous ? " (non-contiguous inputs)" : "")
                  << " threw: " << e.what() << " [MMGRAD_OPS_SEED=" << base_seed() << "]";
  }
}

class OpGradcheck : public ::testing::TestWithParam<std::string> {};

TEST_P(OpGradcheck, Contiguous) { run_gradcheck(find_case(GetParam()), false); }
TEST_P(OpGradcheck, NonContiguous) { run_gradcheck(find_case(GetParam()), true); }

INSTANTIATE_TEST_SUITE_P(Ops, OpGradcheck, ::testing::ValuesIn(case_names(true)),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// The same gradchecks (float64) on every other device; instantiated only where one works
// (test_parity.cpp's OpParityDevices says why when none does).
class OpGradcheckDevice : public ::testing::TestWithParam<std::string> {};

TEST_P(OpGradcheckDevice, EveryDevice) {
  for (const Device& d : available_devices()) {
    if (d == Device::cpu()) continue;
    run_gradcheck(find_case(GetParam()), false, d);
    run_gradcheck(find_case(GetParam()), true, d);
  }
}

GTEST_ALLOW_UNINSTANTIATED_PARAMETERIZED_TEST(OpGradcheckDevice);
INSTANTIATE_TEST_SUITE_P(Ops, OpGradcheckDevice, ::testing::ValuesIn(case_names_for_other_devices(true)),
                         [](const ::testing::TestParamInfo<std::string>& info) { return info.param; });

// ---------------------------------------------------------------- the table itself

TEST(OpRegistry, CoversEveryOp) {
  std::set<std::string> covered;
  for (const OpCase& c : all_op_cases()) covered.insert(c.ops.begin(), c.ops.end());
  for (const std::string& op : required_op_names())
    EXPECT_TRUE(covered.count(op)) << "no op case exercises " << op
                                   << ": add one to tests/ops/op_cases.cpp";
  // And no case claims an op that the list does not know (a typo would hide a gap).
  std::set<std::string> known(required_op_names().begin(), required_op_names().end());
  for (const OpCase& c : all_op_cases())
    for (const std::string& op : c.ops)
      EXPECT_TRUE(known.count(op)) << c.name << " names unknown op " << op;
}

TEST(OpRegistry, EveryDifferentiableOpHasAGradcheck) {
  // Ops whose output is differentiable must appear in a case with differentiable inputs.
  const std::vector<std::string> differentiable = {
      "to_dtype", "to_device", "contiguous", "clone", "reshape", "view", "flatten", "transpose",
      "permute", "narrow", "slice", "select", "expand", "squeeze", "unsqueeze", "Tensor::t",
      "neg", "abs", "sign", "exp", "log", "sqrt", "rsqrt", "pow", "square", "reciprocal", "tanh",
      "sigmoid", "relu", "gelu", "quick_gelu", "erf", "add", "sub", "mul", "div", "maximum",
      "minimum", "add_scalar", "sub_scalar", "mul_scalar", "div_scalar", "maximum_scalar",
      "minimum_scalar", "operator+", "operator-", "operator*", "operator/", "operator+(t,s)",
      "operator-(t,s)", "operator*(t,s)", "operator/(t,s)", "operator+(s,t)", "operator-(s,t)",
      "operator*(s,t)", "operator/(s,t)", "operator-(t)", "where", "where_scalar", "sum", "mean",
      "var", "amax", "amin", "max", "min", "sum_to", "matmul", "linear", "softmax",
      "log_softmax", "layer_norm", "layer_norm_mlp", "cross_entropy", "scaled_dot_product_attention", "dropout",
      "embedding", "patch_embed", "index_select", "gather", "concat", "stack", "split", "chunk"};
  std::set<std::string> checked;
  for (const OpCase& c : all_op_cases())
    if (c.differentiable() && c.gradcheck) checked.insert(c.ops.begin(), c.ops.end());
  for (const std::string& op : differentiable)
    EXPECT_TRUE(checked.count(op)) << op << " has no gradcheck case";
}

TEST(OpRegistry, NamesAreUniqueTestNames) {
  std::set<std::string> seen;
  for (const OpCase& c : all_op_cases()) {
    EXPECT_TRUE(seen.insert(c.name).second) << "duplicate case " << c.name;
    EXPECT_FALSE(c.name.empty());
    EXPECT_TRUE(std::all_of(c.name.begin(), c.name.end(),
                            [](char ch) { return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_'; }))
        << c.name;
    EXPECT_TRUE(static_cast<bool>(c.fn)) << c.name;
    EXPECT_FALSE(c.ops.empty()) << c.name;
    for (const InputSpec& s : c.inputs) {
      if (c.gradcheck) {
        EXPECT_LE(numel_of(s.shape), 64) << c.name << ": keep gradcheck inputs small";
      }
      if (s.requires_grad) {
        EXPECT_EQ(s.kind, Kind::Float) << c.name;
      }
    }
  }
}

// The non-contiguous variant really is non-contiguous and holds the same values.
TEST(OpRegistry, NonContiguousVariantsMatchContiguousValues) {
  for (const OpCase& c : all_op_cases()) {
    auto values = make_values(c, case_seed(c.name));
    Variant v;
    v.dtype = DType::F32;
    auto dense = make_inputs(c, values, v);
    v.noncontiguous = true;
    auto strided = make_inputs(c, values, v);
    ASSERT_EQ(dense.size(), c.inputs.size());
    for (size_t k = 0; k < c.inputs.size(); ++k) {
      EXPECT_TRUE(dense[k].is_contiguous()) << c.name << " input " << k;
      EXPECT_EQ(dense[k].shape(), strided[k].shape()) << c.name << " input " << k;
      if (c.inputs[k].layout != Layout::Contiguous) {
        EXPECT_TRUE(!strided[k].is_contiguous() || strided[k].offset() != 0)
            << c.name << " input " << k << " is not laid out differently";
      }
      EXPECT_EQ(to_vector<double>(dense[k]), to_vector<double>(strided[k])) << c.name << " input " << k;
      EXPECT_EQ(dense[k].requires_grad(), c.inputs[k].requires_grad) << c.name << " input " << k;
    }
  }
}

TEST(OpRegistry, IndexInputsAreInRange) {
  for (const OpCase& c : all_op_cases()) {
    auto values = make_values(c, case_seed(c.name));
    for (size_t k = 0; k < c.inputs.size(); ++k) {
      const InputSpec& s = c.inputs[k];
      if (s.kind != Kind::Index || s.values) continue;
      for (double x : values[k]) {
        EXPECT_GE(x, static_cast<double>(s.low)) << c.name;
        EXPECT_LT(x, static_cast<double>(s.high)) << c.name;
      }
    }
  }
}

// ---------------------------------------------------------- the harness catches bugs

// A function whose recorded gradient is wrong (detach hides a dependence) must fail.
TEST(OpHarness, GradcheckCatchesAWrongGradient) {
  Tensor x = randn({3, 4}, DType::F64);
  x.set_requires_grad(true);
  auto wrong = [](const std::vector<Tensor>& in) { return mul(in[0], detach(in[0])); };
  GradcheckResult r = gradcheck(wrong, {x});
  EXPECT_FALSE(r.ok);
  auto right = [](const std::vector<Tensor>& in) { return mul(in[0], in[0]); };
  EXPECT_TRUE(gradcheck(right, {x}).ok);
}

TEST(OpHarness, CompareCatchesOneWrongElement) {
  std::vector<double> a = {1, 2, 3, 4, 5, 6};
  Tensor want = from_data(a, {2, 3});
  EXPECT_TRUE(compare(want, want, {0, 0}).ok);
  a[4] += 1e-5;
  Comparison c = compare(from_data(a, {2, 3}), want, {1e-6, 1e-6});
  EXPECT_FALSE(c.ok);
  EXPECT_NE(c.message.find("element 4"), std::string::npos) << c.message;
  EXPECT_TRUE(compare(from_data(a, {2, 3}), want, {1e-5, 1e-5}).ok);
  EXPECT_FALSE(compare(from_data(a, {3, 2}), want, {1, 1}).ok);  // shape mismatch
  EXPECT_FALSE(compare(from_data(a, {2, 3}), want, {1, 1}, 1e-20).ok);  // NMSE bound
  std::vector<double> nan = {1, 2, std::nan(""), 4, 5, 6};
  EXPECT_FALSE(compare(from_data(nan, {2, 3}), want, {1, 1}).ok);
}

TEST(OpHarness, RunCaseGivesGradientsOfEveryInput) {
  const OpCase& c = find_case("add_bcast_3x1x4_5x4");
  Variant v;
  auto inputs = make_inputs(c, make_values(c, 7), v);
  Outcome o = run_case(c, inputs, 7);
  ASSERT_EQ(o.grads.size(), 2u);
  EXPECT_EQ(o.out.shape(), (Shape{3, 5, 4}));
  EXPECT_EQ(o.grads[0].shape(), (Shape{3, 1, 4}));
  EXPECT_EQ(o.grads[1].shape(), (Shape{5, 4}));
}

}  // namespace
