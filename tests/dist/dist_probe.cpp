// A 2-rank program for the failure tests (tests/dist/test_dist.cpp): one rank misbehaves
// while the other waits in an all-reduce, and the job must end with a clear error, not hang.
//   dist_probe stuck   rank 1 sleeps instead of joining; rank 0's collective times out (2 s)
//   dist_probe die     rank 1 kills itself (SIGKILL) instead of joining
//   dist_probe ok      both join: prints "probe ok" on rank 0
#include <csignal>
#include <cstdio>
#include <cstring>
#include <thread>

#include "autograd/ops.h"
#include "dist/communicator.h"

int main(int argc, char** argv) {
  using namespace mmgrad;
  const char* mode = argc > 1 ? argv[1] : "ok";
  dist::Communicator& comm = dist::world("mpi");
  comm.set_timeout(2);
  if (comm.rank() == 1 && !std::strcmp(mode, "stuck")) std::this_thread::sleep_for(std::chrono::seconds(60));
  if (comm.rank() == 1 && !std::strcmp(mode, "die")) std::raise(SIGKILL);
  Tensor t = ones({1});
  comm.all_reduce_sum(t);
  if (comm.rank() == 0) std::printf("probe ok: %g\n", item(t));
  return 0;
}
