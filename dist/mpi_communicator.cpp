// The MPI communicator. Every MPI call of the process runs on one communication thread, in
// the order the collectives were started: the main thread enqueues a job and carries on
// (all_reduce_sum_async, how gradient buckets overlap backward) or waits for it. One
// thread owning MPI keeps the order identical on every rank and needs no more than
// MPI_THREAD_SERIALIZED from the library.
//
// The thread starts each collective non-blocking and polls MPI_Test with short sleeps
// rather than blocking in MPI: Open MPI's blocking calls spin a core, which on a machine
// with as many ranks as cores would take the core from the computation it should overlap.
#include "dist/backends.h"

#ifdef MMGRAD_HAVE_MPI
// The C interface only (Open MPI's deprecated C++ bindings do not compile warning-free).
#define OMPI_SKIP_MPICXX 1
#define MPICH_SKIP_MPICXX 1
#include <mpi.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <deque>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

#include <fmt/format.h>

#include "autograd/grad_mode.h"
#include "autograd/ops.h"
#endif

namespace mmgrad::dist {

#ifndef MMGRAD_HAVE_MPI

std::unique_ptr<Communicator> make_mpi_communicator() { return nullptr; }

#else

namespace {

void check_mpi(int rc, const char* what) {
  if (rc == MPI_SUCCESS) return;
  char text[MPI_MAX_ERROR_STRING];
  int len = 0;
  MPI_Error_string(rc, text, &len);
  fail("mpi", fmt::format("{} failed: {}", what, std::string(text, static_cast<size_t>(len))));
}

MPI_Datatype mpi_type(DType dtype, const char* op) {
  switch (dtype) {
    case DType::F32: return MPI_FLOAT;
    case DType::F64: return MPI_DOUBLE;
    case DType::I64: return MPI_INT64_T;
    case DType::I32: return MPI_INT32_T;
    default: fail(op, "MPI reductions take f32, f64, i32 or i64 tensors, got " + std::string(dtype_name(dtype)));
  }
}

// A host tensor holding t's values (t itself when it already lives on the CPU).
Tensor on_host(const Tensor& t) { return t.device().type == DeviceType::CPU ? t : t.to(Device::cpu()); }

// Writes host values back into a tensor on another device.
// After an in-place collective: a GPU tensor gets the host result (copy_ bumps its
// version); a CPU one was written in place by MPI, so its version is bumped here. Anything
// keyed on the version (saved tensors, autocast's rounded copies) then sees the new values.
void copy_back(const Tensor& target, const Tensor& host) {
  if (target.device().type == DeviceType::CPU) {
    target.bump_version();
    return;
  }
  Tensor t = target;
  copy_(t, host);
}

class MpiCommunicator final : public Communicator {
 public:
  MpiCommunicator() {
    thread_ = std::thread([this] { run(); });
    std::unique_lock<std::mutex> lock(mutex_);
    cv_.wait(lock, [this] { return started_; });
    if (!init_error_.empty()) {
      lock.unlock();
      thread_.join();
      fail("mpi", init_error_);
    }
  }
  ~MpiCommunicator() override {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
    }
    cv_.notify_all();
    thread_.join();
  }

  int rank() const override { return rank_; }
  int size() const override { return size_; }
  std::string name() const override { return "mpi"; }
  double communication_seconds() const override { return static_cast<double>(busy_ns_.load()) * 1e-9; }

  void all_reduce_sum(const Tensor& t) override { all_reduce_sum_async(t)->wait(); }

  std::unique_ptr<Work> all_reduce_sum_async(const Tensor& t) override {
    check_contiguous(t, "all_reduce_sum");
    const MPI_Datatype type = mpi_type(t.dtype(), "all_reduce_sum");
    Tensor host = on_host(t);
    return submit("all_reduce_sum", [this, t, host, type] {
      run_request("MPI_Iallreduce", [&](MPI_Request* req) {
        return MPI_Iallreduce(MPI_IN_PLACE, host.raw_data(), static_cast<int>(host.numel()), type, MPI_SUM,
                              MPI_COMM_WORLD, req);
      });
    }, [t, host] { copy_back(t, host); });
  }

  Tensor all_gather(const Tensor& t) override {
    const Shape shape = gathered_shape(t, size_);
    Tensor in = on_host(t);
    Tensor out = Tensor::empty(shape, t.dtype(), Device::cpu());
    const int bytes = static_cast<int>(in.numel() * dtype_size(t.dtype()));
    submit("all_gather", [this, in, out, bytes] {
      run_request("MPI_Iallgather", [&](MPI_Request* req) {
        return MPI_Iallgather(in.raw_data(), bytes, MPI_BYTE, out.raw_data(), bytes, MPI_BYTE, MPI_COMM_WORLD, req);
      });
    })->wait();
    return out.to(t.device());
  }

  Tensor reduce_scatter_sum(const Tensor& t) override {
    const Shape shape = scattered_shape(t, size_);
    const MPI_Datatype type = mpi_type(t.dtype(), "reduce_scatter_sum");
    Tensor in = on_host(t);
    Tensor out = Tensor::empty(shape, t.dtype(), Device::cpu());
    submit("reduce_scatter_sum", [this, in, out, type] {
      run_request("MPI_Ireduce_scatter_block", [&](MPI_Request* req) {
        return MPI_Ireduce_scatter_block(in.raw_data(), out.raw_data(), static_cast<int>(out.numel()), type, MPI_SUM,
                                         MPI_COMM_WORLD, req);
      });
    })->wait();
    return out.to(t.device());
  }

  void broadcast(const Tensor& t, int root) override {
    check_contiguous(t, "broadcast");
    if (root < 0 || root >= size_) fail("broadcast", fmt::format("root {} is not a rank (0..{})", root, size_ - 1));
    Tensor host = on_host(t);
    const int bytes = static_cast<int>(host.numel() * dtype_size(host.dtype()));
    submit("broadcast", [this, host, bytes, root] {
      run_request("MPI_Ibcast", [&](MPI_Request* req) {
        return MPI_Ibcast(host.raw_data(), bytes, MPI_BYTE, root, MPI_COMM_WORLD, req);
      });
    }, [t, host] { copy_back(t, host); })->wait();
  }

  std::vector<std::string> all_gather_bytes(const std::string& bytes) override {
    std::vector<std::string> out(static_cast<size_t>(size_));
    submit("all_gather_bytes", [this, &bytes, &out] {
      std::vector<int> sizes(static_cast<size_t>(size_));
      int mine = static_cast<int>(bytes.size());
      run_request("MPI_Iallgather", [&](MPI_Request* req) {
        return MPI_Iallgather(&mine, 1, MPI_INT, sizes.data(), 1, MPI_INT, MPI_COMM_WORLD, req);
      });
      std::vector<int> offsets(static_cast<size_t>(size_));
      int total = 0;
      for (int r = 0; r < size_; ++r) offsets[static_cast<size_t>(r)] = total, total += sizes[static_cast<size_t>(r)];
      std::string all(static_cast<size_t>(total), '\0');
      run_request("MPI_Iallgatherv", [&](MPI_Request* req) {
        return MPI_Iallgatherv(bytes.data(), mine, MPI_BYTE, all.data(), sizes.data(), offsets.data(), MPI_BYTE,
                               MPI_COMM_WORLD, req);
      });
      for (int r = 0; r < size_; ++r)
        out[static_cast<size_t>(r)] = all.substr(static_cast<size_t>(offsets[static_cast<size_t>(r)]),
                                                 static_cast<size_t>(sizes[static_cast<size_t>(r)]));
    })->wait();
    return out;
  }

  void barrier() override {
    submit("barrier", [this] { run_request("MPI_Ibarrier", [](MPI_Request* req) { return MPI_Ibarrier(MPI_COMM_WORLD, req); }); })
        ->wait();
  }

  [[noreturn]] void abort(int code) override {
    std::fflush(stdout);
    std::fflush(stderr);
    // Called from the main thread while the communication thread may sit in a collective:
    // Open MPI's abort ends every process of the job through the launcher.
    MPI_Abort(MPI_COMM_WORLD, code);
    std::_Exit(code);
  }

 private:
  struct Job {
    std::string what;
    std::function<void()> fn;
    std::promise<void> done;
  };

  class MpiWork final : public Work {
   public:
    MpiWork(MpiCommunicator& comm, std::string what, std::shared_future<void> done, std::function<void()> after)
        : comm_(comm), what_(std::move(what)), done_(std::move(done)), after_(std::move(after)) {}
    void wait() override {
      if (waited_) return;
      comm_.wait_for_completion(done_, what_);
      waited_ = true;
      done_.get();  // rethrows the job's error
      if (after_) after_();
    }

   private:
    MpiCommunicator& comm_;
    std::string what_;
    std::shared_future<void> done_;
    std::function<void()> after_;
    bool waited_ = false;
  };

  std::unique_ptr<Work> submit(std::string what, std::function<void()> fn, std::function<void()> after = {}) {
    auto job = std::make_unique<Job>();
    job->what = what;
    job->fn = std::move(fn);
    std::shared_future<void> done = job->done.get_future().share();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      queue_.push_back(std::move(job));
    }
    cv_.notify_all();
    return std::make_unique<MpiWork>(*this, std::move(what), std::move(done), std::move(after));
  }

  // Waits for a collective; past the timeout the job is ended on every rank.
  void wait_for_completion(const std::shared_future<void>& done, const std::string& what) {
    if (timeout_seconds_ <= 0) {
      done.wait();
      return;
    }
    if (done.wait_for(std::chrono::duration<double>(timeout_seconds_)) == std::future_status::ready) return;
    std::fprintf(stderr,
                 "mmgrad: rank %d of %d: the collective '%s' did not complete within %.0f s: another rank has "
                 "died, hangs, or is running a different command; ending the job (dist_timeout sets the limit)\n",
                 rank_, size_, what.c_str(), timeout_seconds_);
    abort(3);
  }

  // Starts a non-blocking MPI operation and polls it to completion.
  template <typename Start>
  void run_request(const char* what, Start start) {
    MPI_Request req = MPI_REQUEST_NULL;
    check_mpi(start(&req), what);
    int flag = 0;
    for (int polls = 0;; ++polls) {
      check_mpi(MPI_Test(&req, &flag, MPI_STATUS_IGNORE), what);
      if (flag) return;
      // Poll hot for a few microseconds (small messages finish there), then yield the core.
      if (polls > 64) std::this_thread::sleep_for(std::chrono::microseconds(20));
    }
  }

  void run() {
    int provided = 0;
    int rc = MPI_Init_thread(nullptr, nullptr, MPI_THREAD_MULTIPLE, &provided);
    {
      std::lock_guard<std::mutex> lock(mutex_);
      if (rc != MPI_SUCCESS) {
        init_error_ = "MPI_Init_thread failed";
      } else {
        MPI_Comm_set_errhandler(MPI_COMM_WORLD, MPI_ERRORS_RETURN);
        MPI_Comm_rank(MPI_COMM_WORLD, &rank_);
        MPI_Comm_size(MPI_COMM_WORLD, &size_);
        if (provided < MPI_THREAD_SERIALIZED)
          init_error_ = "the MPI library does not allow calls from a thread other than main (MPI_THREAD_SERIALIZED)";
      }
      started_ = true;
    }
    cv_.notify_all();
    if (rc != MPI_SUCCESS) return;
    for (;;) {
      std::unique_ptr<Job> job;
      {
        std::unique_lock<std::mutex> lock(mutex_);
        cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
        if (queue_.empty()) break;  // stopping, nothing left
        job = std::move(queue_.front());
        queue_.pop_front();
      }
      const auto t0 = std::chrono::steady_clock::now();
      try {
        NoGradGuard no_grad;
        job->fn();
        job->done.set_value();
      } catch (...) {
        job->done.set_exception(std::current_exception());
      }
      busy_ns_ += std::chrono::duration_cast<std::chrono::nanoseconds>(std::chrono::steady_clock::now() - t0).count();
    }
    MPI_Finalize();
  }

  std::thread thread_;
  std::mutex mutex_;
  std::condition_variable cv_;
  std::deque<std::unique_ptr<Job>> queue_;
  bool started_ = false, stopping_ = false;
  std::string init_error_;
  int rank_ = 0, size_ = 1;
  std::atomic<int64_t> busy_ns_{0};
};

}  // namespace

std::unique_ptr<Communicator> make_mpi_communicator() { return std::make_unique<MpiCommunicator>(); }

#endif  // MMGRAD_HAVE_MPI

}  // namespace mmgrad::dist
