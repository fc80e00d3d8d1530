// A 2-rank program for the failure tests (tests/dist/test_dist.cpp): one rank misbehaves
// while the other waits in an all-reduce, and the job must end with a clear error, not hang.
//   dist_probe stuck   rank 1 sleeps instead of joining; rank 0's collective times out (2 s)
//   dist_probe die     rank 1 kills itself (SIGKILL) instead of joining
//   dist_probe ok      both join: prints "probe ok" on rank 0
//   dist_probe nccl    NCCL collectives on cuda:0 tensors, any number of ranks (one is the
//                      GPU machine's check, bench/gpu_check.sh): prints "nccl ok" on rank 0
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "autograd/ops.h"
#include "dist/communicator.h"

namespace {

int nccl_check() {
  using namespace mmgrad;
  dist::Communicator& comm = dist::world("nccl");
  const int n = comm.size(), r = comm.rank();
  const Device gpu = Device::cuda(0);
  Tensor a = full({3}, 1.0 + r, DType::F32, gpu);
  const uint64_t version = a.version();
  comm.all_reduce_sum(a);
  const bool bumped = a.version() > version;  // written in place: the version moves
  Tensor b = full({2, 2}, static_cast<double>(r), DType::F32, gpu);
  Tensor gathered = comm.all_gather(b);
  Tensor scattered = comm.reduce_scatter_sum(full({2 * n, 2}, 1.0, DType::F32, gpu));
  Tensor c = full({4}, r == 0 ? 5.0 : -1.0, DType::F64, gpu);
  comm.broadcast(c, 0);
  const double want_sum = n + n * (n - 1) / 2.0;
  const bool ok = bumped && to_vector<float>(a) == std::vector<float>(3, static_cast<float>(want_sum)) &&
                  gathered.shape() == Shape{2 * n, 2} && to_vector<float>(scattered) == std::vector<float>(4, static_cast<float>(n)) &&
                  to_vector<double>(c) == std::vector<double>(4, 5.0);
  if (r == 0) std::printf("%s: all_reduce, all_gather, reduce_scatter, broadcast on %d rank(s)\n", ok ? "nccl ok" : "nccl WRONG", n);
  return ok ? 0 : 1;
}

}  // namespace

int main(int argc, char** argv) {
  using namespace mmgrad;
  const char* mode = argc > 1 ? argv[1] : "ok";
  if (!std::strcmp(mode, "nccl")) {
    try {
      return nccl_check();
    } catch (const Error& e) {
      std::fprintf(stderr, "dist_probe nccl: %s\n", e.what());
      return 1;
    }
  }
  dist::Communicator& comm = dist::world("mpi");
  comm.set_timeout(2);
  if (comm.rank() == 1 && !std::strcmp(mode, "stuck")) std::this_thread::sleep_for(std::chrono::seconds(60));
  if (comm.rank() == 1 && !std::strcmp(mode, "die")) std::raise(SIGKILL);
  Tensor t = ones({1});
  comm.all_reduce_sum(t);
  if (comm.rank() == 0) std::printf("probe ok: %g\n", item(t));
  return 0;
}
