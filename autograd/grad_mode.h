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
// forward: attention composed of ops its probabilities (the fused attention kernel never
// keeps them), layer_norm_mlp its normalised input and activation.
// On (the default): less memory for a few percent more compute. Off: they keep them, as the
// plain composition would. Process-wide; MMGRAD_RECOMPUTE=0 in the environment starts off
// (mmgrad train sets it from its run's `recompute` key instead).
void set_recompute_in_backward(bool on);
bool recompute_in_backward();
// Whether MMGRAD_RECOMPUTE is set, and the starting value it gives (on unless it is "0").
bool recompute_set_by_environment();
bool recompute_from_environment();

// Whether scaled_dot_product_attention uses a backend's fused attention kernel where it has
// one (on by default): off, it runs as matmul + softmax ops, which is what the fused kernel
// is tested against and what a benchmark compares it with. Process-wide;
// MMGRAD_FUSED_ATTENTION=0 in the environment starts off.
void set_fused_attention(bool on);
bool fused_attention();

// Sets one of the switches above for a scope and restores it however the scope ends
// (tests and benchmarks that compare both ways).
template <bool (*Get)(), void (*Set)(bool)>
class ScopedSwitch {
 public:
  explicit ScopedSwitch(bool on) : previous_(Get()) { Set(on); }
  ~ScopedSwitch() { Set(previous_); }
  ScopedSwitch(const ScopedSwitch&) = delete;
  ScopedSwitch& operator=(const ScopedSwitch&) = delete;

 private:
  bool previous_;
};
using RecomputeGuard = ScopedSwitch<recompute_in_backward, set_recompute_in_backward>;
using FusedAttentionGuard = ScopedSwitch<fused_attention, set_fused_attention>;

}  // namespace mmgrad
