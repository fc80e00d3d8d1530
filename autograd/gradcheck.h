// gradcheck: compares the gradients that backward computes with central finite
// differences, in float64.
//
// For random projections v of the output, the analytical gradient of <v, fn(x)> w.r.t. each
// input element is compared with (<v, fn(x + eps e_i)> - <v, fn(x - eps e_i)>) / (2 eps).
// Inputs may be non-contiguous or broadcast-free views; they are perturbed in place through
// one-element views, so the check runs on any backend.
#pragma once
#include <functional>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mmgrad {

struct GradcheckOptions {
  double eps = 1e-6;
  double atol = 1e-6;
  double rtol = 1e-4;
  int projections = 2;  // random output directions checked
  uint64_t seed = 1234;
};

struct GradcheckResult {
  bool ok = true;
  std::string message;  // names the first mismatching input and element when !ok
  double max_abs_error = 0;
};

using GradcheckFn = std::function<Tensor(const std::vector<Tensor>&)>;

// Every input that requires grad is checked; all inputs that require grad must be f64.
GradcheckResult gradcheck(const GradcheckFn& fn, const std::vector<Tensor>& inputs,
                          const GradcheckOptions& options = {});

}  // namespace mmgrad
