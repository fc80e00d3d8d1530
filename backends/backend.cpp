#include "backends/backend.h"

#include <fmt/format.h>

#include <map>
#include <mutex>
#include <string>

namespace mmgrad {
namespace cpu {
const Backend& backend();
}
#ifdef MMGRAD_HAVE_CUDA
namespace cuda {
const Backend* backend_if_available();
const std::string& unavailable_reason();
}
#endif

namespace {
// Backends built into this binary register on first use (no static-initialiser order games).
const Backend** backends() {
  static const Backend* table[kNumDeviceTypes] = {};
  static bool init = [] {
    table[static_cast<int>(DeviceType::CPU)] = &cpu::backend();
#ifdef MMGRAD_HAVE_CUDA
    table[static_cast<int>(DeviceType::CUDA)] = cuda::backend_if_available();
#endif
    return true;
  }();
  (void)init;
  return table;
}
}  // namespace

void register_backend(DeviceType type, const Backend* backend) {
  backends()[static_cast<int>(type)] = backend;
}

const Backend& backend_for(Device device) {
  const Backend* b = backends()[static_cast<int>(device.type)];
#ifdef MMGRAD_HAVE_CUDA
  if (!b && device.type == DeviceType::CUDA)
    fail("dispatch", device.str() + " is not available: " + cuda::unavailable_reason());
#endif
  if (!b) fail("dispatch", "no backend for device " + device.str() + " in this build of mmgrad");
  if (device.index != 0)
    fail("dispatch", device.str() + " requested; mmgrad drives one device of each kind per process (index 0)");
  return *b;
}

void fail_not_implemented(const char* op, Device device) {
  fail(op, std::string("op ") + op + " is not implemented on " + device.str());
}

bool gemm_has_bf16_operands(const char* op, const Tensor& out, const Tensor& a, const Tensor& b) {
  const bool bf16 = a.dtype() == DType::BF16 && b.dtype() == DType::BF16 && out.dtype() == DType::F32;
  const bool same = a.dtype() == out.dtype() && b.dtype() == out.dtype();
  if (!bf16 && !same)
    fail(op, fmt::format("{} x {} -> {} is not supported (one dtype throughout, or bf16 operands with an f32 "
                         "product)",
                         dtype_name(a.dtype()), dtype_name(b.dtype()), dtype_name(out.dtype())));
  return bf16;
}

const char* unary_op_name(UnaryOp op) {
  static const char* names[] = {"neg",  "abs",     "sign", "exp",  "log",        "sqrt",
                                "rsqrt", "pow",    "tanh", "sigmoid", "relu",    "gelu",
                                "quick_gelu", "erf", "square", "reciprocal"};
  return names[static_cast<int>(op)];
}
const char* binary_op_name(BinaryOp op) {
  static const char* names[] = {"add", "sub", "mul", "div", "maximum", "minimum",
                                "relu_backward", "gelu_backward", "quick_gelu_backward",
                                "tanh_backward", "sigmoid_backward"};
  return names[static_cast<int>(op)];
}
const char* compare_op_name(CompareOp op) {
  static const char* names[] = {"eq", "ne", "lt", "le", "gt", "ge"};
  return names[static_cast<int>(op)];
}
const char* reduce_op_name(ReduceOp op) {
  static const char* names[] = {"sum", "max", "min"};
  return names[static_cast<int>(op)];
}


namespace {
struct AssertMessages {
  std::mutex mu;
  std::map<std::pair<std::string, std::string>, int64_t> ids;
  std::vector<std::pair<std::string, std::string>> by_id;
};
AssertMessages& assert_messages() {
  static AssertMessages* m = new AssertMessages;  // never destroyed: read while reporting at exit
  return *m;
}
}  // namespace

int64_t register_assert_message(const std::string& op, const std::string& message) {
  AssertMessages& m = assert_messages();
  std::lock_guard<std::mutex> lock(m.mu);
  auto [it, added] = m.ids.try_emplace({op, message}, static_cast<int64_t>(m.by_id.size()));
  if (added) m.by_id.emplace_back(op, message);
  return it->second;
}

std::pair<std::string, std::string> assert_message(int64_t id) {
  AssertMessages& m = assert_messages();
  std::lock_guard<std::mutex> lock(m.mu);
  if (id < 0 || id >= static_cast<int64_t>(m.by_id.size()))
    fail("assert_all", "unknown check id " + std::to_string(id));
  return m.by_id[static_cast<size_t>(id)];
}

}  // namespace mmgrad
