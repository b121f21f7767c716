// The functions and actor classes the API tests run remotely, registered by one module
// (api_test_module), plus process-wide test state (a gate, a barrier, counters) that tasks use to
// block deterministically. Call reset_state() at the start of every test.
#pragma once

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <tuple>
#include <vector>

#include "atoll/atoll.hpp"

void api_test_module(atl::Registry& reg);

namespace api_test {

// The bound for every blocking call in the tests: generous, so only a hang reaches it.
inline constexpr std::chrono::seconds kWait{10};

// ---- process-wide test state ----

// Closes the gate and zeroes every counter and the barrier.
void reset_state();
// Releases every gated task and method (now and later, until reset_state).
void open_gate();
// How many gated tasks/methods have started waiting on the gate.
int gate_started();
// How many times flaky / counted tasks ran.
int attempts();
// The largest number of track_concurrency tasks seen running at once.
int max_in_flight();
// The last value given to record().
int recorded();

// Opens the gate when destroyed: declare after the Runtime so that a failing test releases its
// gated tasks before the runtime shuts down.
struct OpenGateOnExit {
  OpenGateOnExit() = default;
  OpenGateOnExit(const OpenGateOnExit&) = delete;
  OpenGateOnExit& operator=(const OpenGateOnExit&) = delete;
  ~OpenGateOnExit() { open_gate(); }
};

// ---- tasks ----

int add(int a, int b);
int plus_one(int x);
int square(int x);
std::string concat(std::string a, std::string b);
// Throws std::runtime_error("negative input: <x>") when x < 0.
int throw_if_negative(int x);
void record(int v);
// Throws std::runtime_error(message).
void fail_void(std::string message);
// Sleeps min(ms, 200) milliseconds, then returns v.
int slow_value(int v, int ms);
// Counts as started, waits up to kWait for the gate; returns v, or -1 when the gate never opened.
int gated_value(int v);
// Counts an attempt; throws while the attempt number <= fail_times; returns the attempt number.
int flaky(int fail_times);
// Waits (up to 5 s) until `parties` callers arrived at the shared barrier; true when they did.
bool barrier_arrive(int parties);
// Tracks how many of these run at once (see max_in_flight), sleeping min(ms, 200) ms; returns 1.
int track_concurrency(int ms);
// The reference's id as {owner, sequence}; never reads the value.
std::tuple<std::uint64_t, std::uint64_t> ref_id(atl::ObjectRef<int> ref);
// ref.get(kWait) + k, read inside the task.
int deref_plus(atl::ObjectRef<int> ref, int k);
// Sum of i*i for i < n, each square computed by a nested task.
int sum_of_squares(atl::RuntimeRef rt, int n);
// Fibonacci by nested tasks that block in get.
int fib(atl::RuntimeRef rt, int n);
// Defined but deliberately NOT registered.
int not_registered(int x);

// A Buffer of `size` bytes, each equal to `fill`.
atl::Buffer make_buffer(std::uint64_t size, int fill);
// The address of the Buffer's first byte, to check that it arrived without a copy.
std::uint64_t buffer_address(atl::Buffer b);
// Sum of the bytes.
std::uint64_t buffer_sum(atl::Buffer b);

struct Point {
  double x = 0;
  double y = 0;
  std::string label;
  ATOLL_FIELDS(x, y, label);
  friend bool operator==(const Point&, const Point&) = default;
};
Point translate(Point p, double dx);

// ---- actors ----

struct Counter {
  Counter() = default;
  explicit Counter(int start) : n(start) {}
  int incr(int by);
  int value() const;
  // Throws std::runtime_error(message).
  int fail(std::string message);
  // Waits on the gate (like gated_value), then adds `by`.
  int gated_incr(int by);
  // Deliberately NOT registered.
  int unregistered_method();

  int n = 0;
};

// Appends in call order; thread-safe so that a wrong concurrency fails the test, not the process.
struct Appender {
  void append(int v);
  std::vector<int> snapshot() const;

  mutable std::mutex mu;
  std::vector<int> items;
};

// Its constructor throws std::runtime_error("constructor failed").
struct Exploding {
  Exploding();
  int ping();
};

// A barrier inside one actor: arrive(p) waits (up to 5 s) until p calls arrived.
struct Rendezvous {
  bool arrive(int parties);

  std::mutex mu;
  std::condition_variable cv;
  int arrived = 0;
};

// Calls other actors and submits nested tasks.
struct Forwarder {
  int forward(atl::ActorHandle<Counter> counter, int by);
  int spawn_add(atl::RuntimeRef rt, int a, int b);
};

// Calls a Counter through a handle passed as an argument.
int incr_via_handle(atl::ActorHandle<Counter> counter, int by);

// Deliberately NOT registered.
struct NotRegisteredActor {
  int ping() { return 1; }
};

// ---- helpers for the tests (no gtest dependency) ----

// The category of the atl::Error that fn throws; std::nullopt when it returns normally.
// Other exceptions propagate (and fail the test).
template <class Fn>
std::optional<atl::ErrorCategory> thrown_category(Fn&& fn) {
  try {
    fn();
  } catch (const atl::Error& e) {
    return e.category();
  }
  return std::nullopt;
}

// Polls pred every 2 ms until it holds or the timeout passes; returns its last value.
template <class Pred>
bool wait_until(Pred&& pred, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
  auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() >= deadline) return pred();
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return true;
}

// An embedded runtime with the test module and one node of `cpus` CPUs.
inline atl::Runtime make_runtime(double cpus = 4) {
  return atl::init({.modules = {api_test_module}, .nodes = {{.num_cpus = cpus}}});
}

}  // namespace api_test
