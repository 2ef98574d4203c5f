// ThreadPool: a persistent pool of worker threads for data-parallel kernels.
// run() hands every worker the same function and waits until all return. Workers spin briefly,
// then sleep on a futex-like condition; they never allocate while running a job.
#pragma once

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <thread>
#include <type_traits>
#include <vector>

namespace hearth {

class ThreadPool {
 public:
  // n_threads includes the calling thread: n_threads - 1 workers are started.
  explicit ThreadPool(int n_threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  int size() const { return n_threads_; }

  // Calls fn(ctx, thread_index, n_threads) on every thread (the caller is thread 0) and waits.
  using Job = void (*)(void* ctx, int thread_index, int n_threads);
  void run(Job fn, void* ctx);

  // Runs f(begin, end) over [0, n) split into chunks of `grain` handed out by an atomic counter.
  template <typename F>
  void parallel_for(int64_t n, int64_t grain, F&& f) {
    if (n <= 0) return;
    if (grain < 1) grain = 1;
    if (n_threads_ == 1 || n <= grain) {
      f(int64_t{0}, n);
      return;
    }
    struct Ctx {
      std::remove_reference_t<F>* f;
      int64_t n, grain;
      std::atomic<int64_t> next{0};
    } ctx{&f, n, grain};
    run(
        [](void* p, int, int) {
          auto* c = static_cast<Ctx*>(p);
          for (;;) {
            int64_t b = c->next.fetch_add(c->grain, std::memory_order_relaxed);
            if (b >= c->n) break;
            int64_t e = b + c->grain < c->n ? b + c->grain : c->n;
            (*c->f)(b, e);
          }
        },
        &ctx);
  }

  // Like parallel_for, but each claim takes a share of what is left (at least min_grain):
  // long contiguous runs first, for the hardware prefetchers of streaming loops, and small
  // pieces at the end, so that no thread waits long for a slower one.
  template <typename F>
  void parallel_for_guided(int64_t n, int64_t min_grain, F&& f) {
    if (n <= 0) return;
    if (min_grain < 1) min_grain = 1;
    if (n_threads_ == 1 || n <= min_grain) {
      f(int64_t{0}, n);
      return;
    }
    struct Ctx {
      std::remove_reference_t<F>* f;
      int64_t n, min_grain, divisor;
      std::atomic<int64_t> next{0};
    } ctx{&f, n, min_grain, 2 * static_cast<int64_t>(n_threads_)};
    run(
        [](void* p, int, int) {
          auto* c = static_cast<Ctx*>(p);
          int64_t b = c->next.load(std::memory_order_relaxed);
          for (;;) {
            if (b >= c->n) break;
            int64_t len = (c->n - b) / c->divisor;
            if (len < c->min_grain) len = c->min_grain;
            const int64_t e = b + len < c->n ? b + len : c->n;
            if (!c->next.compare_exchange_weak(b, e, std::memory_order_relaxed)) continue;
            (*c->f)(b, e);
            b = c->next.load(std::memory_order_relaxed);
          }
        },
        &ctx);
  }

 private:
  void worker(int index);

  int n_threads_;
  std::vector<std::thread> workers_;
  std::mutex mu_;
  std::condition_variable cv_;
  Job job_ = nullptr;
  void* ctx_ = nullptr;
  std::atomic<uint64_t> generation_{0};
  std::atomic<int> pending_{0};
  bool stop_ = false;
};

}  // namespace hearth
