// A stretch of code in which no tensor may travel between the host and a device: no value read
// back (to_vector, item), no host data turned into a tensor (from_data), no copy across devices,
// no random draw keyed by a host generator.
//
// Why: a CUDA graph records the kernels of a training step once and replays them; whatever the
// host did while recording is not repeated. A value read back would stop the recording (it
// needs the GPU to have run), an upload would replay yesterday's data, a random draw would give
// the same numbers on every replay. Such a step must receive everything that varies as device
// tensors (the inputs) and leave its results in device tensors (the outputs).
//
// The ban is checked on every device, the CPU included, so a CPU test can prove that a step
// is capture-safe without a GPU: run it inside a ban and nothing may throw.
#pragma once
#include <string>

namespace mmgrad {

class HostTransferBan {
 public:
  // `during` names the stretch for the error message ("a CUDA graph capture"). Bans nest; the
  // innermost one names the error.
  explicit HostTransferBan(std::string during);
  ~HostTransferBan();
  HostTransferBan(const HostTransferBan&) = delete;
  HostTransferBan& operator=(const HostTransferBan&) = delete;
  const std::string& during() const { return during_; }

 private:
  std::string during_;
  const HostTransferBan* outer_;
};

// Throws mmgrad::Error naming `op` and what it tried (`what`) when this thread is inside a
// HostTransferBan; free otherwise.
void check_host_transfer_allowed(const char* op, const char* what);
bool host_transfers_banned();

}  // namespace mmgrad
