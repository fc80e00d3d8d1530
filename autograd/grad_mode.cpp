#include "autograd/grad_mode.h"

#include <atomic>
#include <cstdlib>
#include <string>

namespace mmgrad {
namespace {
thread_local bool t_grad_enabled = true;
}
bool GradMode::is_enabled() { return t_grad_enabled; }
void GradMode::set_enabled(bool on) { t_grad_enabled = on; }

namespace {
// A process-wide switch, on unless the environment variable says 0.
bool on_unless_zero(const char* variable) {
  const char* v = std::getenv(variable);
  return !(v && std::string(v) == "0");
}
}  // namespace
bool recompute_set_by_environment() { return std::getenv("MMGRAD_RECOMPUTE") != nullptr; }
bool recompute_from_environment() { return on_unless_zero("MMGRAD_RECOMPUTE"); }
namespace {
std::atomic<bool>& recompute_flag() {
  static std::atomic<bool> on{recompute_from_environment()};
  return on;
}
std::atomic<bool>& fused_attention_flag() {
  static std::atomic<bool> on{on_unless_zero("MMGRAD_FUSED_ATTENTION")};
  return on;
}
}  // namespace
void set_recompute_in_backward(bool on) { recompute_flag().store(on); }
bool recompute_in_backward() { return recompute_flag().load(); }
void set_fused_attention(bool on) { fused_attention_flag().store(on); }
bool fused_attention() { return fused_attention_flag().load(); }
}  // namespace mmgrad
