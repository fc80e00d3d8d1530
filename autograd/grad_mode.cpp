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
std::atomic<bool>& recompute_flag() {
  static std::atomic<bool> on{[] {
    const char* v = std::getenv("MMGRAD_RECOMPUTE");
    return !(v && std::string(v) == "0");
  }()};
  return on;
}
}  // namespace
void set_recompute_in_backward(bool on) { recompute_flag().store(on); }
bool recompute_in_backward() { return recompute_flag().load(); }
}  // namespace mmgrad
