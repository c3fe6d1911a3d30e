// ThreadPool: lazily started workers and a parallel_for in which the caller works too.
#include "blockcore/base/thread_pool.h"

#include <atomic>
#include <memory>

namespace vdkit {

ThreadPool::ThreadPool(unsigned threads) : threads_(threads == 0 ? 1 : threads) {}

ThreadPool::~ThreadPool() {
  {
    std::lock_guard<std::mutex> lk(mu_);
    stop_ = true;
  }
  cv_.notify_all();
  for (auto& t : workers_) t.join();
}

ThreadPool& ThreadPool::shared() {
  static ThreadPool* pool = new ThreadPool(std::max(1u, std::thread::hardware_concurrency()));  // never destroyed: workers may outlive static destruction order
  return *pool;
}

void ThreadPool::start_locked() {
  if (!workers_.empty()) return;
  for (unsigned i = 0; i < threads_; ++i) workers_.emplace_back([this] { worker(); });
}

void ThreadPool::post(std::function<void()> fn) {
  {
    std::lock_guard<std::mutex> lk(mu_);
    start_locked();
    queue_.push_back(std::move(fn));
  }
  cv_.notify_one();
}

void ThreadPool::worker() {
  for (;;) {
    std::function<void()> fn;
    {
      std::unique_lock<std::mutex> lk(mu_);
      cv_.wait(lk, [this] { return stop_ || !queue_.empty(); });
      if (queue_.empty()) return;
      fn = std::move(queue_.front());
      queue_.pop_front();
    }
    fn();
  }
}

void ThreadPool::parallel_for(size_t n, const std::function<void(size_t)>& fn) {
  if (n == 0) return;
  if (n == 1) {
    fn(0);
    return;
  }
  struct Shared {
    std::atomic<size_t> next{0};
    std::atomic<size_t> finished{0};
    std::mutex mu;
    std::condition_variable done;
  };
  auto sh = std::make_shared<Shared>();
  auto run = [sh, n, &fn] {
    size_t i;
    while ((i = sh->next.fetch_add(1)) < n) {
      fn(i);
      if (sh->finished.fetch_add(1) + 1 == n) {
        std::lock_guard<std::mutex> lk(sh->mu);
        sh->done.notify_all();
      }
    }
  };
  // Helpers: at most one per worker, and fewer than items (the caller works too).
  size_t helpers = std::min<size_t>(threads_, n - 1);
  for (size_t h = 0; h < helpers; ++h) post(run);
  run();
  std::unique_lock<std::mutex> lk(sh->mu);
  sh->done.wait(lk, [&] { return sh->finished.load() == n; });
}

}  // namespace vdkit
