// The op test table: one registry of op cases, shared by three harnesses in the style of
// ggml's test-backend-ops:
//   test_gradcheck.cpp  gradients vs central finite differences (float64), contiguous and
//                       non-contiguous inputs;
//   test_parity.cpp     every op on every available backend vs the CPU result (forward and
//                       the gradient of every input), plus strided vs contiguous on the CPU;
//   test_precision.cpp  float32 results vs float64 results within the stated tolerances,
//                       and float64 results vs an independent reference where a case has
//                       one (host loops, or a composition of simpler ops).
// test_gradcheck.cpp also checks the table itself: every op of ops.h has a case.
//
// A case describes its inputs (shape, kind, value domain, how to lay out the non-contiguous
// variant) and a function of them. The harnesses draw fresh random values for every case
// (the seed depends on the case name and on MMGRAD_OPS_SEED), build the inputs in the dtype,
// device and layout they test, and compare.
//
// Case functions must be dtype- and device-generic: any tensor they create takes its dtype
// and device from an input, so the same case runs in f32 and f64, on the CPU and on CUDA.
#pragma once
#include <cstdint>
#include <functional>
#include <string>
#include <vector>

#include "autograd/gradcheck.h"
#include "autograd/ops.h"

namespace mmgrad::optest {

enum class Kind {
  Float,  // the dtype under test (f64 for gradcheck, f32 and f64 for precision, ...)
  Index,  // integer indices (i64 unless index_dtype says otherwise)
  Bool,   // masks
};

// The values an input takes (all of them exactly representable in f32, so the f32 and the
// f64 runs see the same numbers).
enum class Domain {
  Normal,        // N(0, 1)
  Positive,      // U[0.5, 2]: log, sqrt, rsqrt, fractional powers
  AwayFromZero,  // +-U[0.5, 1.5]: abs, relu, sign kinks; divisors
  Distinct,      // a random permutation of well separated values (multiples of 1/8): max,
                 // min, argmax and sorting-like ops, so no ties and no reordering under eps
  SmallInt,      // integers in [-2, 2] (as floats): comparisons with many exact ties
  Index,         // integers in [low, high)
};

// How the non-contiguous variant of an input is laid out. The logical values are the same
// as in the contiguous variant; the padding of the underlying storage holds NaN (floats) or
// out-of-range values (indices), so a kernel that reads outside the view is caught.
enum class Layout {
  Auto,              // TransposedStrided for >= 2 dims, StridedLast for 1 dim, Offset for 0-d
  Contiguous,        // no non-contiguous variant
  Transposed,        // a transposed view of the last two dims (BLAS-style transposes)
  Permuted,          // all dims reversed
  StridedLast,       // every other element of the last dim, starting at offset 1
  StridedFirst,      // every other row of dim 0, starting at offset 1
  TransposedStrided, // StridedLast, then the last two dims transposed
  ExpandedFirst,     // a stride-0 broadcast along dim 0 (values repeat along dim 0)
  Offset,            // a view at a non-zero storage offset
};

struct InputSpec {
  Shape shape;
  Kind kind = Kind::Float;
  bool requires_grad = true;  // differentiable input (only floats)
  Domain domain = Domain::Normal;
  int64_t low = 0, high = 1;  // Domain::Index: values in [low, high)
  DType index_dtype = DType::I64;
  // Optional: replaces the domain. Gets the element index and a uniform draw in [0, 1).
  std::function<double(int64_t i, double u)> values;
  Layout layout = Layout::Auto;
};

// Builders for the common specs.
InputSpec F(Shape shape, Domain domain = Domain::Normal, Layout layout = Layout::Auto);
InputSpec Const(Shape shape, Domain domain = Domain::Normal, Layout layout = Layout::Auto);
InputSpec Idx(Shape shape, int64_t low, int64_t high, Layout layout = Layout::Auto);
InputSpec Mask(Shape shape, Layout layout = Layout::Auto);

// Tolerance of an f32 result against the f64 result, elementwise:
//   |y32 - y64| <= atol + rtol * |y64|.
struct Tolerance {
  double rtol = 0;
  double atol = 0;
};
struct Precision {
  Tolerance out;   // the forward output
  Tolerance grad;  // the gradient of every differentiable input
};

// The tolerance classes (see the comment in op_cases.cpp for why each is what it is).
Precision exact_precision();
Precision elementwise_precision();
Precision reduction_precision(int64_t k);
Precision normalization_precision(int64_t k);

using OpFn = std::function<Tensor(const std::vector<Tensor>&)>;

struct OpCase {
  std::string name;              // unique, [A-Za-z0-9_], the test's name
  std::vector<std::string> ops;  // the ops.h names this case exercises
  std::vector<InputSpec> inputs;
  OpFn fn;
  Precision precision;
  // Finite-difference settings (the defaults are GradcheckOptions'; a few cases widen eps).
  double gc_eps = 1e-6, gc_atol = 1e-6, gc_rtol = 1e-4;
  // Large cases (sizes past the kernels' SIMD, blocking and threading thresholds) run in the
  // parity and precision harnesses only: finite differences cost a forward per element.
  bool gradcheck = true;
  // Optional independent reference for the f64 results: host math on the input values
  // (forward only) or a composition of simpler ops (forward and gradients), e.g. softmax as
  // exp(x - max) / sum. Compared by the OpReference test in test_precision.cpp.
  OpFn reference;

  bool differentiable() const;  // some input requires grad
};

// The whole table, built once.
const std::vector<OpCase>& all_op_cases();
const OpCase& find_case(const std::string& name);
std::vector<std::string> case_names(bool differentiable_only);
// case_names(differentiable_only) when a device other than the CPU works, else none: the
// per-device suites are instantiated only where there is a device to run them on.
std::vector<std::string> case_names_for_other_devices(bool differentiable_only);
std::vector<std::string> reference_case_names();

// Tolerance of an f64 result against the f64 reference: the case's f32 tolerance times 1e-5
// (exact classes stay exact).
Tolerance reference_tolerance(const Tolerance& f32_tolerance);

// Every op of autograd/ops.h that computes values: the registry must cover all of them.
const std::vector<std::string>& required_op_names();

// ------------------------------------------------------------------ harness helpers

// The base seed (MMGRAD_OPS_SEED, or a fixed default) mixed with the case name.
uint64_t case_seed(const std::string& name);
uint64_t base_seed();

// The logical (row-major) values of every input of a case, as doubles.
std::vector<std::vector<double>> make_values(const OpCase& c, uint64_t seed);

struct Variant {
  DType dtype = DType::F64;  // for Kind::Float inputs
  Device device = Device::cpu();
  bool noncontiguous = false;
  bool set_requires_grad = true;  // mark differentiable inputs as requiring grad
  bool allow_expanded_grad = true;  // false: differentiable ExpandedFirst inputs become
                                    // StridedFirst (finite differences cannot perturb one
                                    // element of a broadcast view)
};

// Builds the inputs of a case from their logical values.
std::vector<Tensor> make_inputs(const OpCase& c, const std::vector<std::vector<double>>& values,
                                const Variant& v);

// The forward output and the gradient of every input (undefined for inputs that do not
// require grad), all on the CPU; floats converted to f64. The gradient is of
// sum(out * w), i.e. out.backward(w), for a random w drawn from `seed` (identical values in
// f32 and f64).
struct Outcome {
  Tensor out;
  std::vector<Tensor> grads;
};
// With strided_upstream, the incoming gradient w is a non-contiguous view (same values).
Outcome run_case(const OpCase& c, const std::vector<Tensor>& inputs, uint64_t seed,
                 bool strided_upstream = false);

// ggml-style comparison of two results: normalised MSE sum((a-b)^2) / sum(b^2), the largest
// absolute error, and the elementwise tolerance check.
struct Comparison {
  bool ok = true;
  double nmse = 0;
  double max_abs = 0;
  std::string message;  // the first failure (shape, dtype, or element and values)
};
// Passes when every element is within `tol` and the NMSE is at most max_nmse. Non-floating
// results (masks, indices) must match exactly. NaN matches only NaN, inf only the same inf.
Comparison compare(const Tensor& got, const Tensor& want, const Tolerance& tol,
                   double max_nmse = 1.0);

// Devices whose backend is built in and usable (the CPU first), and a line per device type
// that is not, saying why.
std::vector<Device> available_devices();
std::vector<std::string> unavailable_device_notes();

}  // namespace mmgrad::optest
