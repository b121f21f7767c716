// The threads of one node that run tasks. The scheduler only hands a node as many tasks as its
// resources allow, so the pool simply grows a thread whenever a task arrives and no thread is
// idle — which is also what lets a worker blocked in `get` be replaced while it waits. Threads
// beyond `keep_threads` that stay idle for `idle_timeout` retire, so a burst of nested tasks does
// not leave hundreds of threads behind.
#pragma once

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstddef>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace atl::runtime {

struct TaskRecord;

class WorkerPool {
 public:
  using Run = std::function<void(TaskRecord*)>;

  WorkerPool(Run run, std::size_t max_threads, std::size_t keep_threads = 0,
             std::chrono::milliseconds idle_timeout = std::chrono::seconds(10));
  ~WorkerPool();
  WorkerPool(const WorkerPool&) = delete;
  WorkerPool& operator=(const WorkerPool&) = delete;

  // False once stopping: the caller keeps the task.
  bool submit(TaskRecord* task);
  // Lets running tasks finish, joins every thread and returns the tasks that never started.
  std::vector<TaskRecord*> stop();
  std::size_t thread_count() const;

 private:
  void loop();
  bool take(std::unique_lock<std::mutex>& lock, TaskRecord*& task);
  void retire_self_locked();

  const Run run_;
  const std::size_t max_threads_;
  const std::size_t keep_threads_;
  const std::chrono::milliseconds idle_timeout_;
  mutable std::mutex mu_;
  std::condition_variable cv_;
  std::deque<TaskRecord*> queue_;
  std::atomic<std::size_t> queued_{0};  // mirrors queue_.size() for lock-free spinning
  std::size_t idle_ = 0;                // threads not running a task
  std::size_t sleeping_ = 0;            // idle threads blocked on cv_
  bool stopping_ = false;
  std::vector<std::thread> threads_;
  std::vector<std::thread> retired_;  // exited (or exiting) threads, joined by the next caller
};

}  // namespace atl::runtime
