// The test job's functions, for drivers that submit them to a cluster. The same source is built
// into the test executable (the driver) and as the shared library shipped to the nodes.
#pragma once

#include <atoll/atoll.hpp>

#include <atomic>
#include <string>

namespace job {

int add(int a, int b);
std::string greet(std::string name);
int fails(int x);  // throws std::invalid_argument
int segfault();
int aborts();
int exits(int code);
int nested(atl::RuntimeRef rt, int x);  // add(x, 1), run as a nested task
// The function registered as `name` (in any language) called with x, by name, as a nested task.
int call_by_name(atl::RuntimeRef rt, std::string name, int x);
// Python function `function` of module `module` (imported by a node's Python worker) called with
// x, as a nested task: how a C++ driver calls Python on a cluster.
int call_python(atl::RuntimeRef rt, std::string module, std::string function, int x);
// The length of the string behind `ref`, read by the task itself (an ObjectRef parameter).
std::int64_t length_of(atl::RuntimeRef rt, atl::ObjectRef<std::string> ref);
int sleep_then(int ms, int value);
// `bytes` bytes of a pattern seeded by `seed` (large ones stay on the node that made them).
std::string blob(int bytes, int seed);
// blob(bytes, seed) after sleeping `ms` milliseconds.
std::string slow_blob(int ms, int bytes, int seed);
// FNV-1a of `data`.
std::uint64_t digest(std::string data);
// The same bytes as blob(bytes, seed), as an atl::Buffer (which crosses processes as a msgpack bin
// and reaches a worker on the value's node through shared memory).
atl::Buffer buffer_blob(int bytes, int seed);
std::uint64_t buffer_digest(atl::Buffer data);
std::uint64_t buffer_size(atl::Buffer data);
// Keeps `data` in the worker process (a global) and returns its digest; stashed_digest() reads it
// again later, so a test can tell whether its bytes changed underneath the worker.
std::uint64_t stash(atl::Buffer data);
std::uint64_t stashed_digest();

// State kept in its worker process between calls.
class Counter {
 public:
  Counter() = default;
  explicit Counter(int start) : n_(start) {}
  int incr(int by) { return n_ += by; }
  int value() const { return n_; }
  int fail(int x);  // throws std::domain_error; the actor lives on
  int crash();      // SIGSEGV: the actor dies
  int slow_incr(int ms, int by);
  int pid() const;
  std::int64_t measure(std::string data) { return static_cast<std::int64_t>(data.size()); }
  std::string make(int bytes) { return std::string(static_cast<std::size_t>(bytes), 'm'); }
  // Adds 10 once it has `data`: tells a test in which order calls with objects ran.
  int measure_then_incr(std::string data) { return data.empty() ? n_ : incr(10); }

 private:
  int n_ = 0;
};

// Adds `by` to `counter` through the handle it was given, from the task's worker.
int bump(atl::ActorHandle<Counter> counter, int by);

// Built with another actor's handle and an object reference: calls that actor, reads that object.
class Relay {
 public:
  Relay(atl::ActorHandle<Counter> counter, atl::ObjectRef<std::string> text)
      : counter_(std::move(counter)), text_(std::move(text)) {}
  int forward(int by) { return counter_.call(&Counter::incr, by).get(); }
  std::int64_t text_length() { return static_cast<std::int64_t>(text_.get().size()); }

 private:
  atl::ActorHandle<Counter> counter_;
  atl::ObjectRef<std::string> text_;
};

// Its constructor throws.
class Faulty {
 public:
  explicit Faulty(int x);
  int value() const { return 0; }
};

// Calls that return only once `parties` calls are inside at once (max_concurrency > 1), or
// after 10 s; each returns how many it saw.
class Rendezvous {
 public:
  int meet(int parties);

 private:
  std::atomic<int> inside_{0};
};

}  // namespace job

void test_job(atl::Registry& reg);
