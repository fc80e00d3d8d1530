#include "backends/cuda/graph.h"

#include <cuda_runtime.h>
#include <fmt/format.h>

#include "backends/cuda/allocator.h"
#include "backends/cuda/context.h"
#include "backends/cuda/kernels.h"
#include "core/error.h"
#include "core/host_transfer_ban.h"

namespace mmgrad::cuda {
namespace {
// Per thread, as the capture mode is: other threads are not recording (and must not queue
// work on the stream meanwhile; in mmgrad only the thread that trains touches the GPU).
thread_local bool recording = false;

// Ends a capture that failed or was abandoned, dropping whatever was recorded.
void abandon_capture() {
  cudaGraph_t partial = nullptr;
  cudaStreamEndCapture(stream(), &partial);
  if (partial) cudaGraphDestroy(partial);
  cudaGetLastError();  // the failed capture's error is reported by the caller, not the next op
}
}  // namespace

struct Graph::Impl {
  cudaGraph_t graph = nullptr;
  cudaGraphExec_t exec = nullptr;
  int pool = 0;
  size_t nodes = 0;
  ~Impl() {
    if (exec) cudaGraphExecDestroy(exec);
    if (graph) cudaGraphDestroy(graph);
    // The stream runs in order: work queued after this (which may reuse the pool) runs after
    // any replay already queued.
    if (pool) release_graph_pool(pool);
  }
};

Graph::Graph() = default;
Graph::~Graph() = default;
Graph::Graph(Graph&&) noexcept = default;
Graph& Graph::operator=(Graph&&) noexcept = default;

void Graph::replay() {
  if (!impl_) fail("cuda graph", "replay of an empty graph (capture_graph makes one)");
  check(cudaGraphLaunch(impl_->exec, stream()), "cuda graph replay");
}

int64_t Graph::nodes() const { return impl_ ? static_cast<int64_t>(impl_->nodes) : 0; }

bool capturing() { return recording; }

Graph capture_graph(const std::function<void()>& record, const std::string& what) {
  if (capturing()) fail("cuda graph", "capturing " + what + " inside another capture");
  // Work queued before the capture must not be mistaken for part of it, and an error it
  // left must be reported now, against the code that caused it.
  synchronize();
  prepare_for_capture();
  prepare_matmul_bias();
  auto impl = std::make_unique<Graph::Impl>();
  impl->pool = begin_graph_pool();
  // The recording flag and the allocator's graph pool are on exactly while this scope records,
  // however it ends.
  struct Recording {
    bool capture_open = false;
    Recording() { recording = true; }
    ~Recording() {
      if (capture_open) abandon_capture();
      recording = false;
      end_graph_pool();
    }
  } scope;
  // Thread-local mode: only this thread's calls are checked, so data-loader threads may keep
  // pinning host memory while the step is recorded.
  check(cudaStreamBeginCapture(stream(), cudaStreamCaptureModeThreadLocal), "cuda graph capture");
  scope.capture_open = true;
  try {
    HostTransferBan ban("a CUDA graph capture of " + what);
    record();
  } catch (const Error& e) {
    fail("cuda graph", fmt::format("capturing {} failed: {}", what, e.what()));
  }
  scope.capture_open = false;
  const cudaError_t err = cudaStreamEndCapture(stream(), &impl->graph);
  if (err != cudaSuccess || !impl->graph) {
    cudaGetLastError();
    fail("cuda graph", fmt::format("capturing {} failed: CUDA ended the capture with {} ({}); something in it is "
                                   "not allowed in a graph",
                                   what, cudaGetErrorString(err), cudaGetErrorName(err)));
  }
  check(cudaGraphGetNodes(impl->graph, nullptr, &impl->nodes), "cuda graph capture");
  check(cudaGraphInstantiate(&impl->exec, impl->graph, 0), "cuda graph instantiate");
  Graph g;
  g.impl_ = std::move(impl);
  return g;
}

}  // namespace mmgrad::cuda
