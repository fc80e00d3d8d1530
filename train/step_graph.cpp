#include "train/step_graph.h"

#include <fmt/format.h>

#include "autograd/autocast.h"
#include "autograd/flops.h"
#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/error.h"
#include "models/clip.h"
#ifdef MMGRAD_HAVE_CUDA
#include "backends/cuda/graph.h"
#endif

namespace mmgrad::train {

#ifdef MMGRAD_HAVE_CUDA
bool cuda_graphs_built() { return true; }

struct StepGraph::Impl {
  const nn::ClipModel& model;
  nn::ObjectiveWeights weights;
  std::vector<nn::LossInputs> inputs;  // the recorded inputs: refilled before each replay
  std::vector<std::pair<Tensor, Tensor>> grads;  // parameter, the gradient the graph writes
  StepLosses outputs;
  cuda::Graph graph;
};

StepGraph::StepGraph(const nn::ClipModel& model, const nn::ObjectiveWeights& weights)
    : impl_(std::make_unique<Impl>(Impl{model, weights, {}, {}, {}, {}})) {}
StepGraph::~StepGraph() = default;

bool StepGraph::recorded() const { return !impl_->graph.empty(); }
int64_t StepGraph::nodes() const { return impl_->graph.nodes(); }

namespace {
// A copy of an input on its device that the graph reads (allocated before recording, so it
// is not in the graph's pool and stays the caller's to refill).
Tensor input_slot(const Tensor& t) { return t.defined() ? clone(t.detach()) : Tensor(); }

void refill(const Tensor& slot, const Tensor& value, const char* name, size_t micro) {
  if (slot.defined() != value.defined() || (slot.defined() && (slot.shape() != value.shape() || slot.dtype() != value.dtype())))
    fail("cuda_graph", fmt::format("micro-batch {}'s {} is {}, but the step was recorded with {}: a recorded step "
                                   "replays fixed shapes",
                                   micro, name, value.defined() ? describe(name, value) : "absent",
                                   slot.defined() ? describe(name, slot) : "none"));
  if (!slot.defined()) return;
  Tensor s = slot;
  copy_(s, value);
}
}  // namespace

StepLosses StepGraph::run(const std::vector<nn::LossInputs>& micro_batches) {
  Impl& g = *impl_;
  if (micro_batches.empty()) fail("cuda_graph", "a step needs at least one micro-batch");
  if (!recorded()) {
    for (const auto& [name, p] : g.model.named_parameters())
      if (p.grad().defined())
        fail("cuda_graph", "parameter " + name + " already has a gradient: zero the gradients before the first step "
                           "(the recorded backward writes them, it does not add to them)");
    for (const nn::LossInputs& in : micro_batches)
      g.inputs.push_back({input_slot(in.images), input_slot(in.ids), input_slot(in.groups), input_slot(in.negative_draws)});
    const double share = 1.0 / static_cast<double>(micro_batches.size());
    const uint64_t flops_before = mmgrad::matmul_flops();
    // A failed recording (or first replay) leaves nothing behind: no graph, inputs, outputs
    // or gradients from it (the gradients would hold memory no kernel has written).
    struct ForgetOnFailure {
      Impl& g;
      bool done = false;
      ~ForgetOnFailure() {
        if (done) return;
        detail::forget_rounded_copies();  // none made inside the failed recording is reused
        g.graph = cuda::Graph();
        g.inputs.clear();
        g.grads.clear();
        g.outputs = StepLosses{};
        for (const auto& [name, p] : g.model.named_parameters()) p.set_grad(Tensor());
      }
    } forget{g};
    g.graph = cuda::capture_graph(
        [&] {
          detail::forget_rounded_copies();  // under autocast: no rounded copy from outside the graph
          for (const nn::LossInputs& in : g.inputs) {
            nn::Losses l = nn::compute_losses(g.model, in, g.weights);
            Tensor scaled = g.inputs.size() > 1 ? mul(l.total, share) : l.total;
            scaled.backward();
            NoGradGuard no_grad;
            auto accumulate = [&](Tensor& sum, const Tensor& value) {
              Tensor v = mul(value.detach(), share);
              sum = sum.defined() ? add(sum, v) : v;
            };
            accumulate(g.outputs.total, l.total);
            if (g.outputs.parts.empty())
              for (const auto& [name, t] : l.parts) g.outputs.parts.emplace_back(name, Tensor());
            for (size_t i = 0; i < l.parts.size(); ++i) accumulate(g.outputs.parts[i].second, l.parts[i].second);
          }
        },
        "the training step");
    flops_ = mmgrad::matmul_flops() - flops_before;
    for (const auto& [name, p] : g.model.named_parameters())
      if (p.grad().defined()) g.grads.emplace_back(p, p.grad());
    g.graph.replay();
    forget.done = true;
    return g.outputs;
  } else {
    if (micro_batches.size() != g.inputs.size())
      fail("cuda_graph", fmt::format("{} micro-batches, but the step was recorded with {}", micro_batches.size(),
                                     g.inputs.size()));
    for (size_t a = 0; a < micro_batches.size(); ++a) {
      refill(g.inputs[a].images, micro_batches[a].images, "images", a);
      refill(g.inputs[a].ids, micro_batches[a].ids, "ids", a);
      refill(g.inputs[a].groups, micro_batches[a].groups, "groups", a);
      refill(g.inputs[a].negative_draws, micro_batches[a].negative_draws, "negative_draws", a);
    }
    // The replay rewrites the recorded gradient tensors; hand them back to the parameters
    // (zero_grad dropped them).
    for (const auto& [param, grad] : g.grads) param.set_grad(grad);
  }
  g.graph.replay();
  return g.outputs;
}

#else
bool cuda_graphs_built() { return false; }

struct StepGraph::Impl {};
StepGraph::StepGraph(const nn::ClipModel&, const nn::ObjectiveWeights&) {
  fail("cuda_graph", "this build of mmgrad has no CUDA (configure with -Dcuda=enabled)");
}
StepGraph::~StepGraph() = default;
bool StepGraph::recorded() const { return false; }
int64_t StepGraph::nodes() const { return 0; }
StepLosses StepGraph::run(const std::vector<nn::LossInputs>&) { return {}; }
#endif

}  // namespace mmgrad::train
