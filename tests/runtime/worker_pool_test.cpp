// WorkerPool: runs what it is given, grows a thread when every thread is busy, respects its
// thread limit, and hands back never-started tasks at stop.
#include "runtime/worker_pool.hpp"

#include <gtest/gtest.h>

#include <algorithm>
#include <chrono>
#include <condition_variable>
#include <mutex>
#include <thread>
#include <vector>

#include "runtime/task_record.hpp"

namespace {

using atl::runtime::TaskRecord;
using atl::runtime::WorkerPool;

constexpr auto kWait = std::chrono::seconds(10);

// Records which tasks ran; `blocker` (when set) waits on a gate that the test opens.
class Recorder {
 public:
  void run(TaskRecord* task) {
    std::unique_lock lock(mu_);
    started_.push_back(task);
    cv_.notify_all();
    if (task == blocker) cv_.wait_for(lock, kWait, [&] { return open_; });
    finished_.push_back(task);
    cv_.notify_all();
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }
  // Bounded: false when `task` did not start in time.
  bool wait_started(const TaskRecord* task) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return contains(started_, task); });
  }
  bool wait_finished(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return finished_.size() >= n; });
  }
  std::vector<const TaskRecord*> started() const {
    std::lock_guard lock(mu_);
    return {started_.begin(), started_.end()};
  }
  bool started(const TaskRecord* task) const {
    std::lock_guard lock(mu_);
    return contains(started_, task);
  }

  const TaskRecord* blocker = nullptr;

 private:
  static bool contains(const std::vector<TaskRecord*>& v, const TaskRecord* t) {
    return std::find(v.begin(), v.end(), t) != v.end();
  }
  mutable std::mutex mu_;
  std::condition_variable cv_;
  bool open_ = false;
  std::vector<TaskRecord*> started_, finished_;
};

// Opens the gate when destroyed: declared after the pool, so a failing test never leaves a
// worker waiting while the pool's destructor joins it.
struct OpenOnExit {
  Recorder& recorder;
  ~OpenOnExit() { recorder.open(); }
};

WorkerPool::Run run_with(Recorder& r) {
  return [&r](TaskRecord* t) { r.run(t); };
}

TEST(WorkerPoolTest, runs_submitted_tasks) {
  Recorder recorder;
  TaskRecord tasks[8];
  WorkerPool pool(run_with(recorder), 4);
  for (auto& t : tasks) ASSERT_TRUE(pool.submit(&t));
  ASSERT_TRUE(recorder.wait_finished(8));
  std::vector<const TaskRecord*> started = recorder.started();
  std::sort(started.begin(), started.end());
  std::vector<const TaskRecord*> expected;
  for (auto& t : tasks) expected.push_back(&t);
  std::sort(expected.begin(), expected.end());
  EXPECT_EQ(started, expected);  // each exactly once
  EXPECT_LE(pool.thread_count(), 4u);
  EXPECT_TRUE(pool.stop().empty());
  EXPECT_EQ(pool.thread_count(), 0u);
}

TEST(WorkerPoolTest, grows_a_thread_when_all_are_busy) {
  Recorder recorder;
  TaskRecord blocker, other;
  recorder.blocker = &blocker;
  WorkerPool pool(run_with(recorder), 4);
  OpenOnExit open_on_exit{recorder};

  ASSERT_TRUE(pool.submit(&blocker));
  ASSERT_TRUE(recorder.wait_started(&blocker));
  EXPECT_EQ(pool.thread_count(), 1u);
  ASSERT_TRUE(pool.submit(&other));
  // The only thread is stuck, so `other` can only finish on a new one.
  ASSERT_TRUE(recorder.wait_finished(1));
  EXPECT_EQ(pool.thread_count(), 2u);

  recorder.open();
  ASSERT_TRUE(recorder.wait_finished(2));
  EXPECT_TRUE(pool.stop().empty());
}

TEST(WorkerPoolTest, does_not_grow_past_max_threads) {
  Recorder recorder;
  TaskRecord blocker, other;
  recorder.blocker = &blocker;
  WorkerPool pool(run_with(recorder), 1);
  OpenOnExit open_on_exit{recorder};

  ASSERT_TRUE(pool.submit(&blocker));
  ASSERT_TRUE(recorder.wait_started(&blocker));
  ASSERT_TRUE(pool.submit(&other));
  EXPECT_EQ(pool.thread_count(), 1u);
  EXPECT_FALSE(recorder.started(&other));

  recorder.open();
  ASSERT_TRUE(recorder.wait_finished(2));
  EXPECT_EQ(pool.thread_count(), 1u);
}

TEST(WorkerPoolTest, stop_returns_never_started_tasks) {
  Recorder recorder;
  TaskRecord blocker, queued1, queued2, late;
  recorder.blocker = &blocker;
  WorkerPool pool(run_with(recorder), 1);
  OpenOnExit open_on_exit{recorder};

  ASSERT_TRUE(pool.submit(&blocker));
  ASSERT_TRUE(recorder.wait_started(&blocker));
  ASSERT_TRUE(pool.submit(&queued1));
  ASSERT_TRUE(pool.submit(&queued2));

  // stop() waits for the running task, so call it from another thread.
  std::vector<TaskRecord*> never_started;
  std::thread stopper([&] { never_started = pool.stop(); });
  // stop() takes the threads and the queue together: once the count drops, it has taken both.
  auto deadline = std::chrono::steady_clock::now() + kWait;
  while (pool.thread_count() != 0 && std::chrono::steady_clock::now() < deadline)
    std::this_thread::sleep_for(std::chrono::milliseconds(1));
  EXPECT_EQ(pool.thread_count(), 0u);
  EXPECT_FALSE(pool.submit(&late));

  recorder.open();
  stopper.join();
  EXPECT_EQ(never_started, (std::vector<TaskRecord*>{&queued1, &queued2}));
  EXPECT_EQ(recorder.started(), std::vector<const TaskRecord*>{&blocker});
  EXPECT_FALSE(pool.submit(&late));
  EXPECT_TRUE(pool.stop().empty());  // stopping twice is harmless
}

TEST(WorkerPoolTest, idle_pool_stops_cleanly) {
  Recorder recorder;
  TaskRecord t;
  WorkerPool pool(run_with(recorder), 2);
  EXPECT_EQ(pool.thread_count(), 0u);
  EXPECT_TRUE(pool.stop().empty());
  EXPECT_FALSE(pool.submit(&t));
  EXPECT_TRUE(recorder.started().empty());
}

}  // namespace
