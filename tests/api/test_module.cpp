#include "test_module.hpp"

#include <algorithm>
#include <atomic>
#include <cstring>
#include <stdexcept>

namespace api_test {
namespace {

std::mutex g_mu;
std::condition_variable g_cv;
bool g_gate_open = false;   // guarded by g_mu
int g_barrier_arrived = 0;  // guarded by g_mu
std::atomic<int> g_gate_started{0};
std::atomic<int> g_attempts{0};
std::atomic<int> g_in_flight{0};
std::atomic<int> g_max_in_flight{0};
std::atomic<int> g_recorded{0};

// Counts as started, then waits up to kWait for the gate; true when it opened.
bool wait_gate() {
  g_gate_started.fetch_add(1);
  std::unique_lock lock(g_mu);
  return g_cv.wait_for(lock, kWait, [] { return g_gate_open; });
}

void sleep_ms(int ms) {
  std::this_thread::sleep_for(std::chrono::milliseconds(std::clamp(ms, 0, 200)));
}

}  // namespace

void reset_state() {
  {
    std::lock_guard lock(g_mu);
    g_gate_open = false;
    g_barrier_arrived = 0;
  }
  g_gate_started = 0;
  g_attempts = 0;
  g_in_flight = 0;
  g_max_in_flight = 0;
  g_recorded = 0;
}

void open_gate() {
  {
    std::lock_guard lock(g_mu);
    g_gate_open = true;
  }
  g_cv.notify_all();
}

int gate_started() {
  return g_gate_started.load();
}
int attempts() {
  return g_attempts.load();
}
int max_in_flight() {
  return g_max_in_flight.load();
}
int recorded() {
  return g_recorded.load();
}

// ---- tasks ----

int add(int a, int b) {
  return a + b;
}
int plus_one(int x) {
  return x + 1;
}
int square(int x) {
  return x * x;
}
std::string concat(std::string a, std::string b) {
  return a + b;
}

int throw_if_negative(int x) {
  if (x < 0) throw std::runtime_error("negative input: " + std::to_string(x));
  return x;
}

void record(int v) {
  g_recorded = v;
}

void fail_void(std::string message) {
  throw std::runtime_error(message);
}

int slow_value(int v, int ms) {
  sleep_ms(ms);
  return v;
}

int gated_value(int v) {
  return wait_gate() ? v : -1;
}

int flaky(int fail_times) {
  int attempt = g_attempts.fetch_add(1) + 1;
  if (attempt <= fail_times) {
    throw std::runtime_error("attempt " + std::to_string(attempt) + " failed");
  }
  return attempt;
}

bool barrier_arrive(int parties) {
  std::unique_lock lock(g_mu);
  ++g_barrier_arrived;
  g_cv.notify_all();
  return g_cv.wait_for(lock, std::chrono::seconds(5),
                       [parties] { return g_barrier_arrived >= parties; });
}

int track_concurrency(int ms) {
  int now = g_in_flight.fetch_add(1) + 1;
  int seen = g_max_in_flight.load();
  while (now > seen && !g_max_in_flight.compare_exchange_weak(seen, now)) {
  }
  sleep_ms(ms);
  g_in_flight.fetch_sub(1);
  return 1;
}

std::tuple<std::uint64_t, std::uint64_t> ref_id(atl::ObjectRef<int> ref) {
  return {ref.id().owner, ref.id().sequence};
}

int deref_plus(atl::ObjectRef<int> ref, int k) {
  return ref.get(kWait) + k;
}

int sum_of_squares(atl::RuntimeRef rt, int n) {
  std::vector<atl::ObjectRef<int>> refs;
  for (int i = 0; i < n; ++i) refs.push_back(rt.task(square).remote(i));
  int sum = 0;
  for (int v : rt.get(refs, kWait)) sum += v;
  return sum;
}

int fib(atl::RuntimeRef rt, int n) {
  if (n < 2) return n;
  auto a = rt.task(fib).remote(n - 1);
  auto b = rt.task(fib).remote(n - 2);
  return a.get(std::chrono::seconds(30)) + b.get(std::chrono::seconds(30));
}

int not_registered(int x) {
  return x;
}

atl::Buffer make_buffer(std::uint64_t size, int fill) {
  atl::MutableBuffer mb = atl::MutableBuffer::allocate(size);
  std::memset(mb.data(), fill, mb.size());
  return std::move(mb).freeze();
}

std::uint64_t buffer_address(atl::Buffer b) {
  return static_cast<std::uint64_t>(reinterpret_cast<std::uintptr_t>(b.data()));
}

std::uint64_t buffer_sum(atl::Buffer b) {
  std::uint64_t sum = 0;
  for (std::byte x : b.bytes()) sum += static_cast<std::uint64_t>(x);
  return sum;
}

Point translate(Point p, double dx) {
  p.x += dx;
  p.label += "+";
  return p;
}

// ---- actors ----

int Counter::incr(int by) {
  return n += by;
}
int Counter::value() const {
  return n;
}
int Counter::fail(std::string message) {
  throw std::runtime_error(message);
}
int Counter::gated_incr(int by) {
  wait_gate();
  return n += by;
}
int Counter::unregistered_method() {
  return -1;
}

void Appender::append(int v) {
  std::lock_guard lock(mu);
  items.push_back(v);
}
std::vector<int> Appender::snapshot() const {
  std::lock_guard lock(mu);
  return items;
}

Exploding::Exploding() {
  throw std::runtime_error("constructor failed");
}
int Exploding::ping() {
  return 1;
}

bool Rendezvous::arrive(int parties) {
  std::unique_lock lock(mu);
  ++arrived;
  cv.notify_all();
  return cv.wait_for(lock, std::chrono::seconds(5), [&] { return arrived >= parties; });
}

int Forwarder::forward(atl::ActorHandle<Counter> counter, int by) {
  return counter.call(&Counter::incr, by).get(kWait);
}

int Forwarder::spawn_add(atl::RuntimeRef rt, int a, int b) {
  return rt.task(add).remote(a, b).get(kWait);
}

int incr_via_handle(atl::ActorHandle<Counter> counter, int by) {
  return counter.call(&Counter::incr, by).get(kWait);
}

}  // namespace api_test

ATOLL_MODULE(api_test_module, reg) {
  using namespace api_test;
  reg.function("add", &add)
      .function("plus_one", &plus_one)
      .function("square", &square)
      .function("concat", &concat)
      .function("throw_if_negative", &throw_if_negative)
      .function("record", &record)
      .function("fail_void", &fail_void)
      .function("slow_value", &slow_value)
      .function("gated_value", &gated_value)
      .function("flaky", &flaky)
      .function("barrier_arrive", &barrier_arrive)
      .function("track_concurrency", &track_concurrency)
      .function("ref_id", &ref_id)
      .function("deref_plus", &deref_plus)
      .function("sum_of_squares", &sum_of_squares)
      .function("fib", &fib)
      .function("make_buffer", &make_buffer)
      .function("buffer_address", &buffer_address)
      .function("buffer_sum", &buffer_sum)
      .function("translate", &translate)
      .function("incr_via_handle", &incr_via_handle);

  reg.actor<Counter>("Counter")
      .constructor<int>()
      .method("incr", &Counter::incr)
      .method("value", &Counter::value)
      .method("fail", &Counter::fail)
      .method("gated_incr", &Counter::gated_incr);
  reg.actor<Appender>("Appender")
      .method("append", &Appender::append)
      .method("snapshot", &Appender::snapshot);
  reg.actor<Exploding>("Exploding").method("ping", &Exploding::ping);
  reg.actor<Rendezvous>("Rendezvous").method("arrive", &Rendezvous::arrive);
  reg.actor<Forwarder>("Forwarder")
      .method("forward", &Forwarder::forward)
      .method("spawn_add", &Forwarder::spawn_add);
}
