#include "dist/grad_reducer.h"

#include <chrono>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"

namespace mmgrad::dist {

GradReducer::GradReducer(Communicator& comm, std::vector<Tensor> params, int64_t bucket_bytes)
    : comm_(comm), params_(std::move(params)) {
  if (bucket_bytes <= 0) fail("GradReducer", "bucket_bytes must be positive");
  // Backward completes the last layers' gradients first: fill buckets from the end. A bucket
  // holds one dtype on one device (it is one flat buffer).
  for (size_t k = params_.size(); k-- > 0;) {
    const Tensor& p = params_[k];
    const bool fresh = buckets_.empty() || buckets_.back().flat.dtype() != p.dtype() ||
                       buckets_.back().flat.device() != p.device() ||
                       (buckets_.back().numel + p.numel()) * static_cast<int64_t>(dtype_size(p.dtype())) > bucket_bytes;
    if (fresh) {
      buckets_.emplace_back();
      buckets_.back().flat = Tensor::empty({0}, p.dtype(), p.device());  // dtype and device until sized
    }
    Bucket& b = buckets_.back();
    b.params.push_back(k);
    b.numel += p.numel();
    bucket_of_[&p.impl()] = buckets_.size() - 1;
  }
  for (Bucket& b : buckets_) b.flat = Tensor::empty({b.numel}, b.flat.dtype(), b.flat.device());
}

GradReducer::ReadyScope::ReadyScope(GradReducer& reducer)
    : hook_([&reducer](const TensorImpl* leaf) { reducer.on_ready(leaf); }) {}

void GradReducer::on_ready(const TensorImpl* leaf) {
  auto it = bucket_of_.find(leaf);
  if (it == bucket_of_.end()) return;  // not one of our parameters (an input that wanted grad)
  ++buckets_[it->second].ready;
  launch_in_order();
}

void GradReducer::launch_in_order() {
  while (next_to_launch_ < buckets_.size() &&
         buckets_[next_to_launch_].ready >= static_cast<int64_t>(buckets_[next_to_launch_].params.size()))
    launch(buckets_[next_to_launch_++]);
}

void GradReducer::launch(Bucket& b) {
  NoGradGuard no_grad;
  int64_t offset = 0;
  for (size_t k : b.params) {
    const Tensor& p = params_[k];
    Tensor slot = narrow(b.flat, 0, offset, p.numel());
    const Tensor g = p.grad();
    if (g.defined()) copy_(slot, reshape(g, {p.numel()}));
    else fill_(slot, 0);
    offset += p.numel();
  }
  b.work = comm_.all_reduce_sum_async(b.flat);
}

double GradReducer::finish() {
  // Parameters that backward never reached (unused by this step's losses) never report:
  // start their buckets now, still in order.
  while (next_to_launch_ < buckets_.size()) launch(buckets_[next_to_launch_++]);
  NoGradGuard no_grad;
  double waited_ms = 0;
  const double scale = 1.0 / comm_.size();
  for (Bucket& b : buckets_) {
    const auto t0 = std::chrono::steady_clock::now();
    b.work->wait();
    waited_ms += std::chrono::duration<double, std::milli>(std::chrono::steady_clock::now() - t0).count();
    b.work.reset();
    int64_t offset = 0;
    for (size_t k : b.params) {
      const Tensor& p = params_[k];
      Tensor g = p.grad();
      if (g.defined()) copy_(g, mul(reshape(narrow(b.flat, 0, offset, p.numel()), p.shape()), scale));
      offset += p.numel();
    }
    b.ready = 0;
  }
  next_to_launch_ = 0;
  return waited_ms;
}

}  // namespace mmgrad::dist
