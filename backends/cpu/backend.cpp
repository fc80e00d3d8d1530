#include "backends/cpu/kernels.h"

namespace mmgrad::cpu {

const Backend& backend() {
  static const Backend table = [] {
    Backend b;
    b.name = "cpu";
#define MMGRAD_FILL_SLOT(op, args) b.op = &cpu::op;
    MMGRAD_BACKEND_OPS(MMGRAD_FILL_SLOT)
    MMGRAD_BACKEND_FUSED_OPS(MMGRAD_FILL_SLOT)
#undef MMGRAD_FILL_SLOT
    return b;
  }();
  return table;
}

}  // namespace mmgrad::cpu
