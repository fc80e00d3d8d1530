#include "core/host_transfer_ban.h"

#include <fmt/format.h>

#include "core/error.h"

namespace mmgrad {
namespace {
thread_local const HostTransferBan* innermost = nullptr;
}  // namespace

HostTransferBan::HostTransferBan(std::string during) : during_(std::move(during)), outer_(innermost) {
  innermost = this;
}

HostTransferBan::~HostTransferBan() {
  innermost = outer_;
}

bool host_transfers_banned() { return innermost != nullptr; }

void check_host_transfer_allowed(const char* op, const char* what) {
  if (!innermost) return;
  fail(op, fmt::format("{} inside {}: nothing may pass between the host and a device there (a recorded step "
                       "replays its kernels only; give it device tensors as inputs and read its outputs "
                       "after it)",
                       what, innermost->during()));
}

}  // namespace mmgrad
