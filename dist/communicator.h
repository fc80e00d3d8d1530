// Collective communication between the processes of a data-parallel run, behind one
// interface so that the training loop does not care which library carries it:
//  - SingleCommunicator: one process, every collective is the identity (the default);
//  - MPI (dist/mpi_communicator.cpp, when built with -Dmpi): processes started by mpirun,
//    on one machine or many; CPU tensors go straight to MPI, CUDA tensors through the host;
//  - NCCL (dist/nccl_communicator.cpp, when built with -Dnccl and CUDA): GPU tensors, with
//    the host-side collectives (strings, checks) left to an MPI or single communicator.
//
// Every collective must be called by every rank in the same order with tensors of the same
// shape and dtype (MPI's rule). Tensors are contiguous; the result has the input's device.
// A collective that does not complete within the timeout (a rank died, hangs or took
// another path) ends the whole job with an error naming the collective and the rank,
// instead of hanging forever.
#pragma once
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "core/tensor.h"

namespace mmgrad::dist {

// An asynchronous collective in flight. wait() returns when it is complete (and rethrows
// its error); the result is then in the tensor that was passed in.
class Work {
 public:
  virtual ~Work() = default;
  virtual void wait() = 0;
};

class Communicator {
 public:
  virtual ~Communicator() = default;
  virtual int rank() const = 0;
  virtual int size() const = 0;
  virtual std::string name() const = 0;  // "single", "mpi", "nccl"

  // In place: t becomes the elementwise sum of every rank's t (f32, f64, i64).
  virtual void all_reduce_sum(const Tensor& t) = 0;
  // Starts all_reduce_sum; the work completes in the order started.
  virtual std::unique_ptr<Work> all_reduce_sum_async(const Tensor& t) = 0;
  // Every rank's t [n, ...] stacked along dim 0 in rank order: [size * n, ...].
  virtual Tensor all_gather(const Tensor& t) = 0;
  // t [size * n, ...] summed over ranks; rank r keeps rows [r n, (r + 1) n).
  virtual Tensor reduce_scatter_sum(const Tensor& t) = 0;
  // In place: t becomes root's t.
  virtual void broadcast(const Tensor& t, int root) = 0;
  // Every rank's bytes, in rank order (sizes may differ).
  virtual std::vector<std::string> all_gather_bytes(const std::string& bytes) = 0;
  virtual void barrier() = 0;
  // Ends every process of the job now (after an error on this rank), so that no rank waits
  // forever in a collective for this one. Never returns.
  [[noreturn]] virtual void abort(int code) = 0;

  // Seconds spent in collectives so far (started to completed, overlapped or not).
  virtual double communication_seconds() const { return 0; }

  // Seconds a collective may take before the job is ended (0: wait forever).
  void set_timeout(double seconds) { timeout_seconds_ = seconds; }
  double timeout() const { return timeout_seconds_; }

 protected:
  double timeout_seconds_ = 600;
};

class SingleCommunicator final : public Communicator {
 public:
  int rank() const override { return 0; }
  int size() const override { return 1; }
  std::string name() const override { return "single"; }
  void all_reduce_sum(const Tensor& t) override;
  std::unique_ptr<Work> all_reduce_sum_async(const Tensor& t) override;
  Tensor all_gather(const Tensor& t) override;
  Tensor reduce_scatter_sum(const Tensor& t) override;
  void broadcast(const Tensor& t, int root) override;
  std::vector<std::string> all_gather_bytes(const std::string& bytes) override { return {bytes}; }
  void barrier() override {}
  [[noreturn]] void abort(int code) override;
};

// The backends this build has: "single" always, "mpi" and "nccl" when built in.
std::vector<std::string> available_backends();

// True when this process was started by an MPI launcher (mpirun/mpiexec/srun set
// OMPI_COMM_WORLD_SIZE, PMI_SIZE or PMIX_RANK).
bool launched_by_mpi();

// The communicator of this process: "auto" is MPI when launched by mpirun with more than
// one process (an error if MPI is not built in), else single. "nccl" is NCCL for CUDA
// tensors over MPI (or alone for one process). The first call creates it (MPI_Init runs
// then); later calls return the same one.
Communicator& world(const std::string& backend = "auto");
// True once world() has created a communicator of more than one rank.
bool world_is_distributed();

// Every rank must have given the same `what` (e.g. the resolved configuration): otherwise
// every rank fails with an error naming `label` and the ranks that differ from rank 0.
void check_same_on_all_ranks(Communicator& comm, const std::string& label, const std::string& what);

// Rank 0's string on every rank.
std::string broadcast_string(Communicator& comm, const std::string& s);

// Makes every rank's parameters (and any other tensors) equal to rank 0's.
void broadcast_tensors(Communicator& comm, const std::vector<Tensor>& tensors);

// The scalar mean over ranks of a per-rank value (for logging a loss).
double mean_over_ranks(Communicator& comm, double value);

}  // namespace mmgrad::dist
