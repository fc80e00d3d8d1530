#include "core/parallel.h"

#include "core/error.h"

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <cstdlib>
#include <exception>
#include <mutex>
#include <thread>
#include <vector>

namespace mmgrad {
namespace {

thread_local bool t_inside_parallel_region = false;

// A job is cut into several chunks per thread, claimed one at a time, so a thread that
// finishes early takes more of them. With one chunk per thread, each thread spun 6-10% of
// its time on the main preset waiting for the other (the two vCPUs of these VMs do not run
// at the same speed from moment to moment). Four per thread measured 3-4% faster steps
// there, in interleaved A/B runs within one process; 2, 8 and 16 were within 2% of 4.
constexpr int kChunksPerThread = 4;

int spin_iterations() {
  static const int n = [] {
    if (const char* env = std::getenv("MMGRAD_POOL_SPIN")) return std::max(0, std::atoi(env));
    return 20000;
  }();
  return n;
}

inline void cpu_relax() {
#if defined(__x86_64__) || defined(__i386__)
  __builtin_ia32_pause();
#endif
}

// A job is a chunked range that the caller and the workers drain together through an atomic
// chunk counter. The hand-off takes no lock on the common path: a training step runs
// hundreds of short parallel_for calls back to back, and the mutex taken twice by each
// side of every job (publish, join, leave, finish) cost about 0.9 us per job.
//
// Publishing is a sequence lock on generation_: odd while the caller writes the job's
// fields, even once they are complete. A worker that sees a new even generation announces
// itself in active_workers_ and then re-reads the generation; the caller, before writing the
// next job, makes the generation odd and waits for active_workers_ to reach 0. Either the
// caller sees the worker's announcement (and waits for it to leave) or the worker sees the
// odd or newer generation (and backs off): no worker reads a job's fields while they change.
//
// Before sleeping, a worker spins for a short while watching for the next job, and the
// caller spins while the last chunks finish: a futex sleep + wake pair per call cost 8-9% of
// the shapes-small step on these VMs (perf: pvm_irq_enable under futex_wait / futex_wake).
// Sleepers are counted, so the condition variables are only touched when someone sleeps.
// MMGRAD_POOL_SPIN sets the spin length in pause instructions (0: sleep at once).
class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  ~ThreadPool() { stop_workers(); }

  int size() const { return size_.load(std::memory_order_relaxed); }

  // Waits for the job in flight (run_mutex_), so workers are never replaced under it.
  void resize(int threads) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    stop_workers();
    stop_flag_.store(false);
    threads = std::max(threads, 1);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work_loop(); });
    size_.store(threads, std::memory_order_relaxed);
  }

  void run(int64_t begin, int64_t end, int64_t chunks,
           const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one job at a time
    // Close the previous job to late joiners, then wait for those already in it to leave.
    const uint64_t writing = generation_.load(std::memory_order_relaxed) + 1;
    generation_.store(writing);  // odd
    wait_until([&] { return active_workers_.load() == 0; });
    fn_ = &fn;
    begin_ = begin;
    end_ = end;
    chunks_ = chunks;
    next_chunk_.store(0, std::memory_order_relaxed);
    pending_.store(chunks, std::memory_order_relaxed);
    error_ = nullptr;
    generation_.store(writing + 1);  // even: published
    if (sleeping_workers_.load() != 0) {
      std::lock_guard<std::mutex> lock(mutex_);
      wake_.notify_all();
    }
    drain();
    wait_until([&] { return pending_.load() == 0; });
    // Workers may still be inside drain(), past their last chunk; the next run() waits for
    // them before it rewrites the fields.
    if (error_) std::rethrow_exception(error_);
  }

 private:
  // Spins, then sleeps on done_ until `ready`; whoever finishes a job's last chunk or leaves
  // it last wakes the caller if it sleeps.
  template <class Ready>
  void wait_until(Ready ready) {
    for (int i = spin_iterations(); i > 0; --i) {
      if (ready()) return;
      cpu_relax();
    }
    std::unique_lock<std::mutex> lock(mutex_);
    caller_sleeping_.store(true);
    done_.wait(lock, ready);
    caller_sleeping_.store(false);
  }

  void wake_caller() {
    if (caller_sleeping_.load()) {
      std::lock_guard<std::mutex> lock(mutex_);
      done_.notify_all();
    }
  }

  void drain() {
    t_inside_parallel_region = true;
    const int64_t n = end_ - begin_, chunks = chunks_;
    for (;;) {
      const int64_t c = next_chunk_.fetch_add(1);
      if (c >= chunks) break;
      const int64_t lo = begin_ + n * c / chunks, hi = begin_ + n * (c + 1) / chunks;
      try {
        (*fn_)(lo, hi);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      if (pending_.fetch_sub(1) == 1) wake_caller();
    }
    t_inside_parallel_region = false;
  }

  void work_loop() {
    uint64_t seen = 0;
    for (;;) {
      uint64_t g = 0;
      auto new_job = [&] {
        // seq_cst, not just acquire: in the sleep condition this load pairs with the caller's
        // "publish, then read sleeping_workers_" (the same instruction as acquire on x86).
        g = generation_.load();
        return g != seen && g % 2 == 0;
      };
      bool found = false;
      for (int i = spin_iterations(); i > 0 && !stop_flag_.load(std::memory_order_relaxed); --i) {
        if ((found = new_job())) break;
        cpu_relax();
      }
      if (!found) {
        std::unique_lock<std::mutex> lock(mutex_);
        sleeping_workers_.fetch_add(1);
        wake_.wait(lock, [&] { return stop_flag_.load() || new_job(); });
        sleeping_workers_.fetch_sub(1);
        if (stop_flag_.load()) return;
      }
      if (stop_flag_.load(std::memory_order_relaxed)) return;
      seen = g;
      active_workers_.fetch_add(1);
      if (generation_.load() == g) drain();  // else the caller is already writing the next job
      if (active_workers_.fetch_sub(1) == 1) wake_caller();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stop_flag_.store(true);
    }
    wake_.notify_all();
    for (auto& w : workers_) w.join();
    workers_.clear();
  }

  std::vector<std::thread> workers_;
  std::atomic<int> size_{1};
  std::mutex run_mutex_, mutex_;
  std::condition_variable wake_, done_;
  // The job's fields: written by the caller only while generation_ is odd and no worker is
  // active, read by workers between their announcement and leaving.
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, chunks_ = 0;
  std::exception_ptr error_;  // under mutex_
  std::atomic<uint64_t> generation_{0};
  std::atomic<int64_t> next_chunk_{0};
  std::atomic<int64_t> pending_{0};  // chunks not yet finished
  std::atomic<int> active_workers_{0};
  std::atomic<int> sleeping_workers_{0};
  std::atomic<bool> caller_sleeping_{false};
  std::atomic<bool> stop_flag_{false};
};

int default_threads() {
  if (const char* env = std::getenv("MMGRAD_NUM_THREADS")) {
    int n = std::atoi(env);
    if (n > 0) return n;
  }
  return std::max(1u, std::thread::hardware_concurrency());
}

ThreadPool& pool() {
  static ThreadPool p(default_threads());
  return p;
}

}  // namespace

int num_threads() { return pool().size(); }
int max_chunks() {
  const int threads = num_threads();
  return threads > 1 ? kChunksPerThread * threads : 1;  // one thread has nobody to balance with
}
void set_num_threads(int n) {
  if (t_inside_parallel_region)
    fail("set_num_threads", "cannot be called from inside a parallel_for task");
  pool().resize(n);
}

void parallel_for(int64_t begin, int64_t end, int64_t grain,
                  const std::function<void(int64_t, int64_t)>& fn) {
  int64_t n = end - begin;
  if (n <= 0) return;
  grain = std::max<int64_t>(grain, 1);
  int64_t chunks = std::min<int64_t>(max_chunks(), std::max<int64_t>(1, n / grain));
  if (chunks <= 1 || t_inside_parallel_region) {
    fn(begin, end);
    return;
  }
  pool().run(begin, end, chunks, fn);
}

}  // namespace mmgrad
