// Whether ops record the graph. Thread-local, like PyTorch's grad mode.
#pragma once

namespace mmgrad {

class GradMode {
 public:
  static bool is_enabled();
  static void set_enabled(bool on);
};

// Within its scope no op records a graph (inference, optimizer updates, backward itself).
class NoGradGuard {
 public:
  NoGradGuard() : previous_(GradMode::is_enabled()) { GradMode::set_enabled(false); }
  ~NoGradGuard() { GradMode::set_enabled(previous_); }
  NoGradGuard(const NoGradGuard&) = delete;
  NoGradGuard& operator=(const NoGradGuard&) = delete;

 private:
  bool previous_;
};

}  // namespace mmgrad
