#include "dist/communicator.h"

#include <algorithm>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <mutex>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "core/json.h"
#include "dist/backends.h"

namespace mmgrad::dist {
namespace {

class DoneWork final : public Work {
 public:
  void wait() override {}
};

int env_int(const char* name) {
  const char* v = std::getenv(name);
  return v && *v ? std::atoi(v) : -1;
}

// "key: rank 0 has X, rank r has Y" for each key of two JSON objects that differs; "" when
// the texts are not both JSON objects.
std::string json_differences(const std::string& a, const std::string& b, int rank_b) {
  json::Value va, vb;
  try {
    va = json::Value::parse(a);
    vb = json::Value::parse(b);
  } catch (const Error&) {
    return "";
  }
  if (!va.is_object() || !vb.is_object()) return "";
  auto text = [](const json::Value* v) -> std::string {
    if (!v) return "(absent)";
    switch (v->kind()) {
      case json::Value::Kind::String: return json::quote(v->as_string(""));
      case json::Value::Kind::Number: return fmt::format("{}", v->as_number(""));
      case json::Value::Kind::Bool: return v->as_bool("") ? "true" : "false";
      case json::Value::Kind::Null: return "null";
      default: return "(a nested value)";
    }
  };
  std::vector<std::string> out;
  for (const auto& [key, value] : va.as_object("")) {
    const json::Value* other = vb.find(key);
    if (!other || text(&value) != text(other))
      out.push_back(fmt::format("{}: rank 0 has {}, rank {} has {}", key, text(&value), rank_b, text(other)));
  }
  for (const auto& [key, value] : vb.as_object(""))
    if (!va.find(key)) out.push_back(fmt::format("{}: rank 0 has (absent), rank {} has {}", key, rank_b, text(&value)));
  return fmt::format("{}", fmt::join(out, "; "));
}

std::mutex g_world_mutex;
std::unique_ptr<Communicator> g_world;

}  // namespace

void check_contiguous(const Tensor& t, const char* op) {
  if (!t.defined() || !t.is_contiguous()) fail(op, "expects a defined, contiguous tensor", {describe("t", t)});
}

Shape gathered_shape(const Tensor& t, int ranks) {
  check_contiguous(t, "all_gather");
  if (t.dim() == 0) fail("all_gather", "expects a tensor with at least one dimension", {describe("t", t)});
  Shape shape = t.shape();
  shape[0] *= ranks;
  return shape;
}

Shape scattered_shape(const Tensor& t, int ranks) {
  check_contiguous(t, "reduce_scatter_sum");
  if (t.dim() == 0 || t.shape()[0] % ranks != 0)
    fail("reduce_scatter_sum", fmt::format("expects a first dimension divisible by the {} ranks", ranks),
         {describe("t", t)});
  Shape shape = t.shape();
  shape[0] /= ranks;
  return shape;
}

void SingleCommunicator::all_reduce_sum(const Tensor& t) { check_contiguous(t, "all_reduce_sum"); }

std::unique_ptr<Work> SingleCommunicator::all_reduce_sum_async(const Tensor& t) {
  check_contiguous(t, "all_reduce_sum");
  return std::make_unique<DoneWork>();
}

Tensor SingleCommunicator::all_gather(const Tensor& t) {
  gathered_shape(t, 1);
  NoGradGuard no_grad;
  return t.clone();
}

Tensor SingleCommunicator::reduce_scatter_sum(const Tensor& t) {
  scattered_shape(t, 1);
  NoGradGuard no_grad;
  return t.clone();
}

void SingleCommunicator::broadcast(const Tensor& t, int root) {
  check_contiguous(t, "broadcast");
  if (root != 0) fail("broadcast", fmt::format("root {} is not a rank of a single process", root));
}

void SingleCommunicator::abort(int code) {
  std::fflush(stdout);
  std::fflush(stderr);
  std::_Exit(code);
}

std::vector<std::string> available_backends() {
  std::vector<std::string> out{"single"};
#ifdef MMGRAD_HAVE_MPI
  out.emplace_back("mpi");
#endif
#ifdef MMGRAD_HAVE_NCCL
  out.emplace_back("nccl");
#endif
  return out;
}

bool launched_by_mpi() {
  return env_int("OMPI_COMM_WORLD_SIZE") > 0 || env_int("PMI_SIZE") > 0 || std::getenv("PMIX_RANK") != nullptr;
}

Communicator& world(const std::string& backend) {
  std::lock_guard<std::mutex> lock(g_world_mutex);
  if (g_world) return *g_world;
  const int launched_size = std::max({env_int("OMPI_COMM_WORLD_SIZE"), env_int("PMI_SIZE"), 1});
  if (backend == "auto") {
    if (launched_by_mpi() && launched_size > 1) {
      g_world = make_mpi_communicator();
      if (!g_world)
        fail("dist", fmt::format("started by mpirun with {} processes, but this mmgrad was built without MPI "
                                 "(install libopenmpi-dev and reconfigure with -Dmpi=enabled)",
                                 launched_size));
    } else {
      g_world = std::make_unique<SingleCommunicator>();
    }
  } else if (backend == "single") {
    g_world = std::make_unique<SingleCommunicator>();
  } else if (backend == "mpi") {
    g_world = make_mpi_communicator();
    if (!g_world) fail("dist", "backend 'mpi' is not built in (install libopenmpi-dev, reconfigure with -Dmpi=enabled)");
  } else if (backend == "nccl") {
    std::unique_ptr<Communicator> host;
    if (launched_by_mpi() && launched_size > 1) {
      host = make_mpi_communicator();
      if (!host) fail("dist", "backend 'nccl' with several processes needs MPI to start them, and MPI is not built in");
    } else {
      host = std::make_unique<SingleCommunicator>();
    }
    g_world = make_nccl_communicator(std::move(host));
    if (!g_world) fail("dist", "backend 'nccl' is not built in (needs CUDA and NCCL; reconfigure with -Dnccl=enabled)");
  } else {
    fail("dist", fmt::format("unknown backend '{}' (expected auto, single, mpi or nccl)", backend));
  }
  return *g_world;
}

bool world_is_distributed() {
  std::lock_guard<std::mutex> lock(g_world_mutex);
  return g_world && g_world->size() > 1;
}

void check_same_on_all_ranks(Communicator& comm, const std::string& label, const std::string& what) {
  if (comm.size() == 1) return;
  const std::vector<std::string> all = comm.all_gather_bytes(what);
  std::vector<int> differ;
  for (int r = 1; r < comm.size(); ++r)
    if (all[static_cast<size_t>(r)] != all[0]) differ.push_back(r);
  if (differ.empty()) return;
  const std::string& a = all[0];
  const std::string& b = all[static_cast<size_t>(differ[0])];
  const std::string keys = json_differences(a, b, differ[0]);
  if (!keys.empty())
    fail("dist", fmt::format("the {} differs between ranks: rank(s) {} differ from rank 0 ({}); every rank must run "
                             "the same command",
                             label, fmt::join(differ, ", "), keys));
  // Not JSON: the first differing position.
  size_t at = 0;
  while (at < a.size() && at < b.size() && a[at] == b[at]) ++at;
  const size_t from = at > 40 ? at - 40 : 0;
  fail("dist", fmt::format("the {} differs between ranks: rank(s) {} differ from rank 0 (first difference at byte "
                           "{}: rank 0 has '...{}...', rank {} has '...{}...'); every rank must run the same "
                           "command",
                           label, fmt::join(differ, ", "), at, a.substr(from, 80), differ[0], b.substr(from, 80)));
}

std::string broadcast_string(Communicator& comm, const std::string& s) {
  if (comm.size() == 1) return s;
  return comm.all_gather_bytes(comm.rank() == 0 ? s : std::string())[0];
}

void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors) {
  if (comm.size() == 1) return;
  NoGradGuard no_grad;
  for (const Tensor& t : tensors) {
    if (t.is_contiguous()) {
      comm.broadcast(t, 0);
    } else {
      Tensor c = t.contiguous();
      comm.broadcast(c, 0);
      Tensor target = t;
      copy_(target, c);
    }
  }
}

double mean_over_ranks(Communicator& comm, double value) {
  if (comm.size() == 1) return value;
  Tensor t = from_data(std::vector<double>{value}, {1});
  comm.all_reduce_sum(t);
  return item(t) / comm.size();
}

}  // namespace mmgrad::dist
