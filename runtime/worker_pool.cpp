#include "runtime/worker_pool.hpp"

#include "runtime/awaiting.hpp"

namespace atl::runtime {

namespace {
constexpr int kIdleSpinMicros = 50;
}

WorkerPool::WorkerPool(Run run, std::size_t max_threads)
    : run_(std::move(run)), max_threads_(max_threads) {}

WorkerPool::~WorkerPool() { stop(); }

bool WorkerPool::submit(TaskRecord* task) {
  bool wake = false;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    queue_.push_back(task);
    queued_.store(queue_.size(), std::memory_order_release);
    if (queue_.size() > idle_ && threads_.size() < max_threads_) {
      ++idle_;  // the new thread starts idle
      threads_.emplace_back([this] { loop(); });
    }
    wake = sleeping_ > 0;
  }
  if (wake) cv_.notify_one();
  return true;
}

bool WorkerPool::take(std::unique_lock<std::mutex>& lock, TaskRecord*& task) {
  while (queue_.empty()) {
    if (stopping_) return false;
    lock.unlock();
    bool arrived = spin_until(
        [&] { return queued_.load(std::memory_order_acquire) > 0; }, kIdleSpinMicros);
    lock.lock();
    if (arrived || !queue_.empty() || stopping_) continue;
    ++sleeping_;
    cv_.wait(lock, [&] { return !queue_.empty() || stopping_; });
    --sleeping_;
  }
  task = queue_.front();
  queue_.pop_front();
  queued_.store(queue_.size(), std::memory_order_release);
  --idle_;
  return true;
}

void WorkerPool::loop() {
  std::unique_lock lock(mu_);
  TaskRecord* task = nullptr;
  while (take(lock, task)) {
    lock.unlock();
    run_(task);
    lock.lock();
    ++idle_;
  }
}

std::vector<TaskRecord*> WorkerPool::stop() {
  std::vector<std::thread> threads;
  std::vector<TaskRecord*> never_started;
  {
    std::lock_guard lock(mu_);
    stopping_ = true;
    never_started.assign(queue_.begin(), queue_.end());
    queue_.clear();
    queued_.store(0, std::memory_order_release);
    threads.swap(threads_);
  }
  cv_.notify_all();
  for (auto& t : threads) t.join();
  return never_started;
}

std::size_t WorkerPool::thread_count() const {
  std::lock_guard lock(mu_);
  return threads_.size();
}

}  // namespace atl::runtime
