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

// Whether fused ops recompute cheap intermediates in backward instead of keeping them from
// forward: attention its probabilities, layer_norm_mlp its normalised input and activation.
// On (the default): less memory for a few percent more compute. Off: they keep them, as the
// plain composition would. Process-wide; MMGRAD_RECOMPUTE=0 in the environment starts off.
void set_recompute_in_backward(bool on);
bool recompute_in_backward();

}  // namespace mmgrad
