// Mixed precision's matmuls, as torch.autocast does them. While an AutocastBf16 guard for a
// device type is alive on this thread, matmul, linear and the fused MLP block on f32 tensors
// of that device type:
//  - round both GEMM operands to bf16 once and multiply them with f32 accumulation into an
//    f32 product (the CUDA backend runs that on bf16 tensor cores);
//  - keep the bf16 operands for the backward pass (half the bytes of f32 ones) instead of the
//    f32 inputs;
//  - in backward, round the incoming gradient once and multiply it with them.
// Sums (bias gradients included), normalisation, softmax, losses, the weights themselves and
// their gradients stay f32. A node decides in forward: the engine runs its backward under the
// guards alive when it was made, whatever is alive then. Saved rounded operands are copies,
// so an in-place change to an input after forward is not detected: the gradients are those
// of the forward that ran.
//
// `mmgrad train` opens one for device=cuda with matmul_precision=bf16. On the CPU (where
// bf16 operands are widened to f32 exactly, so the products are those of the rounded
// operands) it serves as the reference the CUDA results are held to.
#pragma once
#include "core/device.h"
#include "core/tensor.h"

namespace mmgrad {

class AutocastBf16 {
 public:
  explicit AutocastBf16(DeviceType device, bool on = true);
  ~AutocastBf16();
  AutocastBf16(const AutocastBf16&) = delete;
  AutocastBf16& operator=(const AutocastBf16&) = delete;

 private:
  DeviceType device_;
  bool previous_;
};

// Whether matmuls on f32 tensors of this device type round their operands to bf16 on this
// thread.
bool autocast_bf16(DeviceType device);

namespace detail {
// This thread's guards as bits (1 << device type): a graph node records them when it is
// made and the engine restores them while the node's backward runs, so a composite node
// (the composed attention) multiplies in backward as it did in forward.
uint8_t autocast_state();
void set_autocast_state(uint8_t state);

// True when a GEMM of these f32 operands is to run on bf16 ones (a guard for their device).
bool autocasts(const Tensor& a, const Tensor& b);
// t rounded to bf16 (to nearest even) with no graph, laid out for a GEMM (core/matrix_copy.h:
// a transposed view stays transposed, a batch-broadcast matrix is rounded once). While the
// rounded copy is alive, rounding the same view of the same, unmodified values again returns
// it: the q, k and v projections of one input keep one rounded copy, not three. "Unmodified"
// is the storage version (core/tensor.h): a raw write must bump it.
Tensor rounded_to_bf16(const Tensor& t);
// Forgets this thread's rounded copies: a CUDA graph's recording starts with none, so that it
// never reads a copy made outside it (memory the graph does not own).
void forget_rounded_copies();
}  // namespace detail

}  // namespace mmgrad
