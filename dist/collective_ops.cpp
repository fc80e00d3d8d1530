#include "dist/collective_ops.h"

#include "autograd/grad_mode.h"
#include "autograd/node.h"
#include "autograd/ops.h"

namespace mmgrad::dist {

Tensor all_gather_with_grad(Communicator& comm, const Tensor& x) {
  if (comm.size() == 1) return x;
  if (!x.defined() || x.dim() == 0) fail("all_gather_with_grad", "expects a tensor [n, ...]", {describe("x", x)});
  Tensor gathered;
  {
    NoGradGuard no_grad;
    gathered = comm.all_gather(x.contiguous());
  }
  Communicator* c = &comm;
  autograd::record("all_gather_with_grad", gathered, {x}, [c](const Tensor& g) {
    return std::vector<Tensor>{c->reduce_scatter_sum(g.contiguous())};
  });
  return gathered;
}

}  // namespace mmgrad::dist
