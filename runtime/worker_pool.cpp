#include "runtime/worker_pool.hpp"

#include "runtime/awaiting.hpp"

namespace atl::runtime {

namespace {
constexpr int kIdleSpinMicros = 50;
}

WorkerPool::WorkerPool(Run run, std::size_t max_threads, std::size_t keep_threads,
                       std::chrono::milliseconds idle_timeout)
    : run_(std::move(run)),
      max_threads_(max_threads),
      keep_threads_(keep_threads),
      idle_timeout_(idle_timeout) {}

WorkerPool::~WorkerPool() {
  stop();
}

bool WorkerPool::submit(TaskRecord* task) {
  bool wake = false;
  std::vector<std::thread> retired;
  {
    std::lock_guard lock(mu_);
    if (stopping_) return false;
    retired.swap(retired_);
    queue_.push_back(task);
    queued_.store(queue_.size(), std::memory_order_release);
    if (queue_.size() > idle_ && threads_.size() < max_threads_) {
      ++idle_;  // the new thread starts idle
      threads_.emplace_back([this] { loop(); });
    }
    wake = sleeping_ > 0;
  }
  if (wake) cv_.notify_one();
  for (auto& t : retired) t.join();
  return true;
}

bool WorkerPool::take(std::unique_lock<std::mutex>& lock, TaskRecord*& task) {
  while (queue_.empty()) {
    if (stopping_) return false;
    lock.unlock();
    bool arrived =
        spin_until([&] { return queued_.load(std::memory_order_acquire) > 0; }, kIdleSpinMicros);
    lock.lock();
    if (arrived || !queue_.empty() || stopping_) continue;
    ++sleeping_;
    bool woken = cv_.wait_for(lock, idle_timeout_, [&] { return !queue_.empty() || stopping_; });
    --sleeping_;
    if (!woken && threads_.size() > keep_threads_) {
      retire_self_locked();
      return false;
    }
  }
  task = queue_.front();
  queue_.pop_front();
  queued_.store(queue_.size(), std::memory_order_release);
  --idle_;
  return true;
}

void WorkerPool::retire_self_locked() {
  auto self = std::this_thread::get_id();
  for (auto it = threads_.begin(); it != threads_.end(); ++it) {
    if (it->get_id() == self) {
      retired_.push_back(std::move(*it));
      threads_.erase(it);
      break;
    }
  }
  --idle_;
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
    for (auto& t : retired_) threads.push_back(std::move(t));
    retired_.clear();
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
