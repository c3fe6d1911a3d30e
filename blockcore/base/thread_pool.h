// A small shared worker pool for CPU work (inflating and compressing grains) so one reader keeps every core busy.
#pragma once

#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace vdkit {

// Workers start on first use, never at construction, so a process that forks
// (nbdkit) after making the pool object has no threads to lose.
class ThreadPool {
 public:
  explicit ThreadPool(unsigned threads);
  ~ThreadPool();
  ThreadPool(const ThreadPool&) = delete;
  ThreadPool& operator=(const ThreadPool&) = delete;

  // The process-wide pool, one worker per core.
  static ThreadPool& shared();

  unsigned size() const { return threads_; }
  // Queues fn for a worker.
  void post(std::function<void()> fn);
  // Runs fn(0..n-1) across the workers and the calling thread, returning when
  // all are done. fn must not throw.
  void parallel_for(size_t n, const std::function<void(size_t)>& fn);

 private:
  void start_locked();
  void worker();
  unsigned threads_;
  std::mutex mu_;
  std::condition_variable cv_;
  std::deque<std::function<void()>> queue_;
  std::vector<std::thread> workers_;
  bool stop_ = false;
};

}  // namespace vdkit
