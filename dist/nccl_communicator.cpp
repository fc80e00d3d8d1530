// The NCCL communicator: collectives on CUDA tensors between GPUs (one GPU per rank), on
// the backend's one stream, so they order with the kernels around them without host
// synchronisation. The unique id that ties the ranks together and every host-side
// collective (strings, configuration checks) go through the host communicator (MPI when
// mpirun started the job, single for one process). Host tensors are staged through the GPU.
//
// Timeouts: NCCL calls are asynchronous; wait() polls the stream and ncclCommGetAsyncError,
// and past the timeout aborts the NCCL communicator and ends the job, rather than letting a
// dead peer hang the run.
#include "dist/backends.h"

#ifdef MMGRAD_HAVE_NCCL
#include <nccl.h>

#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <thread>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#include "backends/cuda/context.h"
#endif

namespace mmgrad::dist {

#ifndef MMGRAD_HAVE_NCCL

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator>) { return nullptr; }

#else

namespace {

void check_nccl(ncclResult_t rc, const char* what) {
  if (rc != ncclSuccess && rc != ncclInProgress)
    fail("nccl", fmt::format("{} failed: {}", what, ncclGetErrorString(rc)));
}

ncclDataType_t nccl_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::F32: return ncclFloat32;
    case DType::F64: return ncclFloat64;
    case DType::BF16: return ncclBfloat16;
    case DType::I64: return ncclInt64;
    case DType::I32: return ncclInt32;
    default: fail(op, "NCCL reductions take f32, f64, bf16, i32 or i64 tensors, got " + std::string(dtype_name(dtype)));
  }
}

class NcclCommunicator final : public Communicator {
 public:
  explicit NcclCommunicator(std::unique_ptr<Communicator> host) : host_(std::move(host)) {
    rank_ = host_->rank();
    size_ = host_->size();
    // One GPU per rank: the local rank picks it (Open MPI and Slurm say which that is).
    int devices = 0;
    cuda::check(cudaGetDeviceCount(&devices), "nccl");
    const char* local = std::getenv("OMPI_COMM_WORLD_LOCAL_RANK");
    if (!local) local = std::getenv("SLURM_LOCALID");
    const int local_rank = local ? std::atoi(local) : 0;
    if (devices == 0) fail("nccl", "no CUDA device");
    device_ = local_rank % devices;
    cuda::set_device(device_);
    ncclUniqueId id;
    if (rank_ == 0) check_nccl(ncclGetUniqueId(&id), "ncclGetUniqueId");
    std::string bytes(reinterpret_cast<const char*>(&id), sizeof id);
    bytes = broadcast_string(*host_, bytes);
    std::memcpy(&id, bytes.data(), sizeof id);
    check_nccl(ncclCommInitRank(&comm_, size_, id, rank_), "ncclCommInitRank");
  }
  ~NcclCommunicator() override {
    if (comm_) ncclCommDestroy(comm_);
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "nccl"; }

  void all_reduce_sum(const Tensor& t) override { all_reduce_sum_async(t)->wait(); }

  std::unique_ptr<Work> all_reduce_sum_async(const Tensor& t) override {
    check_contiguous(t, "all_reduce_sum");
    Tensor dev = on_device(t);
    check_nccl(ncclAllReduce(dev.raw_data(), dev.raw_data(), static_cast<size_t>(dev.numel()),
                             nccl_type(dev.dtype(), "all_reduce_sum"), ncclSum, comm_, cuda::stream()),
               "ncclAllReduce");
    // A GPU tensor is written in place, by the stream every later kernel runs on: its new
    // version is right from now (a CPU one gets copy_'s bump when the work is waited for).
    if (dev.is_same(t)) t.bump_version();
    return std::make_unique<NcclWork>(*this, "all_reduce_sum", t, dev);
  }

  Tensor all_gather(const Tensor& t) override {
    const Shape shape = gathered_shape(t, size_);
    Tensor in = on_device(t);
    Tensor out = Tensor::empty(shape, t.dtype(), in.device());
    check_nccl(ncclAllGather(in.raw_data(), out.raw_data(), static_cast<size_t>(in.numel() * dtype_size(t.dtype())),
                             ncclUint8, comm_, cuda::stream()),
               "ncclAllGather");
    NcclWork(*this, "all_gather", Tensor(), Tensor()).wait();
    return out.to(t.device());
  }

  Tensor reduce_scatter_sum(const Tensor& t) override {
    const Shape shape = scattered_shape(t, size_);
    Tensor in = on_device(t);
    Tensor out = Tensor::empty(shape, t.dtype(), in.device());
    check_nccl(ncclReduceScatter(in.raw_data(), out.raw_data(), static_cast<size_t>(out.numel()),
                                 nccl_type(t.dtype(), "reduce_scatter_sum"), ncclSum, comm_, cuda::stream()),
               "ncclReduceScatter");
    NcclWork(*this, "reduce_scatter_sum", Tensor(), Tensor()).wait();
    return out.to(t.device());
  }

  void broadcast(const Tensor& t, int root) override {
    check_contiguous(t, "broadcast");
    if (root < 0 || root >= size_) fail("broadcast", fmt::format("root {} is not a rank (0..{})", root, size_ - 1));
    Tensor dev = on_device(t);
    check_nccl(ncclBroadcast(dev.raw_data(), dev.raw_data(), static_cast<size_t>(dev.numel() * dtype_size(t.dtype())),
                             ncclUint8, root, comm_, cuda::stream()),
               "ncclBroadcast");
    if (dev.is_same(t)) t.bump_version();  // written in place (see all_reduce_sum_async)
    NcclWork(*this, "broadcast", t, dev).wait();
  }

  std::vector<std::string> all_gather_bytes(const std::string& bytes) override {
    return host_->all_gather_bytes(bytes);
  }
  void barrier() override {
    Tensor one = zeros({1}, DType::F32, Device::cuda(device_));
    all_reduce_sum(one);
  }
  [[noreturn]] void abort(int code) override {
    if (comm_) ncclCommAbort(comm_);
    comm_ = nullptr;
    host_->abort(code);
    std::_Exit(code);  // not reached
  }

 private:
  // Completion of NCCL work on the stream; copies a staged result back to a host tensor.
  class NcclWork final : public Work {
   public:
    NcclWork(NcclCommunicator& comm, std::string what, Tensor target, Tensor staged)
        : comm_(comm), what_(std::move(what)), target_(std::move(target)), staged_(std::move(staged)) {
      cuda::check(cudaEventCreateWithFlags(&event_, cudaEventDisableTiming), "nccl");
      cuda::check(cudaEventRecord(event_, cuda::stream()), "nccl");
    }
    ~NcclWork() override { cudaEventDestroy(event_); }
    void wait() override {
      if (done_) return;
      comm_.poll(event_, what_);
      done_ = true;
      if (target_.defined() && target_.device().type == DeviceType::CPU) {
        Tensor t = target_;
        copy_(t, staged_);
      }
    }

   private:
    NcclCommunicator& comm_;
    std::string what_;
    Tensor target_, staged_;
    cudaEvent_t event_ = nullptr;
    bool done_ = false;
  };

  Tensor on_device(const Tensor& t) const {
    return t.device().type == DeviceType::CUDA ? t : t.to(Device::cuda(device_));
  }

  void poll(cudaEvent_t event, const std::string& what) {
    const auto start = std::chrono::steady_clock::now();
    for (;;) {
      const cudaError_t q = cudaEventQuery(event);
      if (q == cudaSuccess) return;
      if (q != cudaErrorNotReady) cuda::check(q, "nccl");
      ncclResult_t async = ncclSuccess;
      check_nccl(ncclCommGetAsyncError(comm_, &async), "ncclCommGetAsyncError");
      check_nccl(async, what.c_str());
      const double waited = std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count();
      if (timeout_seconds_ > 0 && waited > timeout_seconds_) {
        std::fprintf(stderr,
                     "mmgrad: rank %d of %d: the NCCL collective '%s' did not complete within %.0f s: another rank "
                     "has died, hangs, or is running a different command; ending the job\n",
                     rank_, size_, what.c_str(), timeout_seconds_);
        abort(3);
      }
      std::this_thread::sleep_for(std::chrono::microseconds(50));
    }
  }

  std::unique_ptr<Communicator> host_;
  ncclComm_t comm_ = nullptr;
  int rank_ = 0, size_ = 1, device_ = 0;
};

}  // namespace

std::unique_ptr<Communicator> make_nccl_communicator(std::unique_ptr<Communicator> host) {
  return std::make_unique<NcclCommunicator>(std::move(host));
}

#endif  // MMGRAD_HAVE_NCCL

}  // namespace mmgrad::dist
