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

// Workers sleep on a condition variable; a job is a chunked range that the caller and the
// workers drain together through an atomic chunk counter.
//
// Before sleeping, a worker spins for a short while watching for the next job, and the
// caller spins while the last chunks finish: a training step runs thousands of short
// parallel_for calls back to back, and a futex sleep + wake pair per call cost 8-9% of the
// shapes-small step on these VMs (perf: pvm_irq_enable under futex_wait / futex_wake). With
// nobody asleep, notify_all makes no system call. MMGRAD_POOL_SPIN sets the spin length in
// pause instructions (0: sleep at once).
class ThreadPool {
 public:
  explicit ThreadPool(int threads) { resize(threads); }
  ~ThreadPool() { stop_workers(); }

  int size() const { return size_.load(std::memory_order_relaxed); }

  // Waits for the job in flight (run_mutex_), so workers are never replaced under it.
  void resize(int threads) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);
    stop_workers();
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = false;
      stop_flag_.store(false);
    }
    threads = std::max(threads, 1);
    for (int i = 1; i < threads; ++i) workers_.emplace_back([this] { work_loop(); });
    size_.store(threads, std::memory_order_relaxed);
  }

  void run(int64_t begin, int64_t end, int64_t chunks,
           const std::function<void(int64_t, int64_t)>& fn) {
    std::lock_guard<std::mutex> run_lock(run_mutex_);  // one job at a time
    {
      std::lock_guard<std::mutex> lock(mutex_);
      fn_ = &fn;
      begin_ = begin;
      end_ = end;
      chunks_ = chunks;
      next_chunk_.store(0);
      pending_ = chunks;
      error_ = nullptr;
      ++generation_;
      published_.store(generation_, std::memory_order_release);
    }
    wake_.notify_all();
    drain();
    for (int i = spin_iterations(); i > 0 && (pending_.load() != 0 || active_workers_.load() != 0); --i) cpu_relax();
    std::unique_lock<std::mutex> lock(mutex_);
    // Also wait for every worker that joined this job to leave drain(), so none of them can
    // read the next job's parameters half-written.
    done_.wait(lock, [&] { return pending_ == 0 && active_workers_ == 0; });
    fn_ = nullptr;
    if (error_) std::rethrow_exception(error_);
  }

 private:
  void drain() {
    t_inside_parallel_region = true;
    int64_t n = end_ - begin_;
    for (;;) {
      int64_t c = next_chunk_.fetch_add(1);
      if (c >= chunks_) break;
      int64_t lo = begin_ + n * c / chunks_, hi = begin_ + n * (c + 1) / chunks_;
      try {
        (*fn_)(lo, hi);
      } catch (...) {
        std::lock_guard<std::mutex> lock(mutex_);
        if (!error_) error_ = std::current_exception();
      }
      // Only the last chunk takes the lock (for the wake-up: a waiter checks pending_ under
      // it), not every chunk: with several chunks per thread, threads would queue on it.
      if (pending_.fetch_sub(1) == 1) {
        std::lock_guard<std::mutex> lock(mutex_);
        done_.notify_all();
      }
    }
    t_inside_parallel_region = false;
  }

  void work_loop() {
    uint64_t seen = 0;
    for (;;) {
      for (int i = spin_iterations(); i > 0 && published_.load(std::memory_order_acquire) == seen &&
                                      !stop_flag_.load(std::memory_order_relaxed); --i)
        cpu_relax();
      {
        std::unique_lock<std::mutex> lock(mutex_);
        wake_.wait(lock, [&] { return stopping_ || (generation_ != seen && fn_ != nullptr); });
        if (stopping_) return;
        seen = generation_;
        ++active_workers_;
      }
      drain();
      std::lock_guard<std::mutex> lock(mutex_);
      if (--active_workers_ == 0) done_.notify_all();
    }
  }

  void stop_workers() {
    {
      std::lock_guard<std::mutex> lock(mutex_);
      stopping_ = true;
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
  const std::function<void(int64_t, int64_t)>* fn_ = nullptr;
  int64_t begin_ = 0, end_ = 0, chunks_ = 0;
  // pending_: chunks not yet finished (the last one to finish takes mutex_ to notify);
  // active_workers_ changes under mutex_ only; both atomic so the spinning caller may read
  // them without it.
  std::atomic<int64_t> pending_{0};
  std::atomic<int> active_workers_{0};
  std::atomic<uint64_t> published_{0};  // generation_, readable by spinning workers
  std::atomic<bool> stop_flag_{false};
  std::atomic<int64_t> next_chunk_{0};
  uint64_t generation_ = 0;
  bool stopping_ = false;
  std::exception_ptr error_;
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
