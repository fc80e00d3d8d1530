// Collectives that autograd differentiates through, for losses that need the global batch.
#pragma once
#include "core/tensor.h"
#include "dist/communicator.h"

namespace mmgrad::dist {

// Every rank's x [n, ...] stacked along dim 0 in rank order: [size * n, ...], with the
// gradient flowing back to this rank's x. Backward sums the gradient of the gathered tensor
// over the ranks and keeps this rank's rows (a reduce-scatter): each rank's x then receives
// the gradient of every rank's loss, as OpenCLIP's gather_with_grad does. Averaging
// parameter gradients over the ranks afterwards gives the gradient of the mean loss.
// With one rank this is x itself.
Tensor all_gather_with_grad(Communicator& comm, const Tensor& x);

}  // namespace mmgrad::dist
