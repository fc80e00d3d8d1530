// CUDA graphs: record the GPU work of a piece of host code once, replay it with one launch.
//
// A small model's training step is launch-bound: about a thousand kernels of a few
// microseconds each, every one paying the host's dispatch and the driver's launch. Recorded
// as a graph, the same kernels are queued by one cudaGraphLaunch and run back to back.
//
// What recording asks of the code (capture_graph enforces it, with clear errors):
//  - nothing passes between host and device (HostTransferBan): values that vary from one
//    replay to the next live in device tensors allocated before the capture, which the caller
//    refills (copy_) before each replay; results are read from tensors after it;
//  - the shapes are those of the capture: a replay runs exactly the recorded kernels;
//  - memory allocated while recording comes from a pool private to the graph (allocator.h),
//    since every replay reuses the same addresses; tensors made during the capture that
//    the caller keeps (outputs, gradients) therefore stay valid, and are rewritten by each
//    replay.
// No CUDA header is needed to use this file.
#pragma once
#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace mmgrad::cuda {

class Graph {
 public:
  Graph();
  ~Graph();  // releases the graph and its memory pool
  Graph(Graph&&) noexcept;
  Graph& operator=(Graph&&) noexcept;

  bool empty() const { return impl_ == nullptr; }
  // Queues the recorded work on the backend's stream (asynchronous, like any op).
  void replay();
  // How many kernels, copies and other nodes the graph holds.
  int64_t nodes() const;

  struct Impl;

 private:
  std::unique_ptr<Impl> impl_;
  friend Graph capture_graph(const std::function<void()>& record, const std::string& what);
};

// Runs `record` with the stream capturing: the GPU work it issues is recorded, not run (run
// it with replay()). `what` names the recorded code in errors ("the training step"). If
// `record` throws, or CUDA refuses the capture, nothing is kept and an mmgrad::Error says why.
Graph capture_graph(const std::function<void()>& record, const std::string& what);

// True on the thread running capture_graph while it records (ops that must not be recorded
// check it).
bool capturing();

}  // namespace mmgrad::cuda
