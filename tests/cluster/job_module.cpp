// A job's task module, built as a shared library the way a user's would be: it registers its
// functions with ATOLL_MODULE and resolves atoll's symbols against the worker that loads it.
#include "tests/cluster/job_module.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <thread>

#include <unistd.h>

namespace job {

int add(int a, int b) {
  return a + b;
}
std::string greet(std::string name) {
  return "hello, " + name;
}
int fails(int x) {
  throw std::invalid_argument("bad input " + std::to_string(x));
}
int segfault() {
  std::raise(SIGSEGV);
  return 0;
}
int aborts() {
  std::abort();
}
int exits(int code) {
  std::exit(code);
}
int nested(atl::RuntimeRef rt, int x) {
  return rt.task(add).remote(x, 1).get();
}
int call_by_name(atl::RuntimeRef rt, std::string name, int x) {
  return rt.task<int>(name).remote(x).get();
}
int call_python(atl::RuntimeRef rt, std::string module, std::string function, int x) {
  return rt.python_task<int>(module, function).remote(x).get();
}
std::int64_t length_of(atl::RuntimeRef rt, atl::ObjectRef<std::string> ref) {
  return static_cast<std::int64_t>(rt.get(ref).size());
}
int sleep_then(int ms, int value) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return value;
}

int Counter::fail(int x) {
  throw std::domain_error("counter cannot take " + std::to_string(x));
}
int Counter::crash() {
  std::raise(SIGSEGV);
  return n_;
}
int Counter::slow_incr(int ms, int by) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return n_ += by;
}
int Counter::pid() const {
  return static_cast<int>(::getpid());
}

Faulty::Faulty(int x) {
  throw std::invalid_argument("cannot build from " + std::to_string(x));
}

std::string blob(int bytes, int seed) {
  std::string out(static_cast<std::size_t>(bytes), '\0');
  std::uint32_t x = static_cast<std::uint32_t>(seed) * 2654435761u + 1;
  for (auto& c : out) {
    x = x * 1664525u + 1013904223u;
    c = static_cast<char>(x >> 24);
  }
  return out;
}

std::string slow_blob(int ms, int bytes, int seed) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return blob(bytes, seed);
}

std::uint64_t digest(std::string data) {
  std::uint64_t h = 1469598103934665603ull;
  for (unsigned char c : data) h = (h ^ c) * 1099511628211ull;
  return h;
}

atl::Buffer buffer_blob(int bytes, int seed) {
  std::string b = blob(bytes, seed);
  return atl::Buffer::copy_of(b.data(), b.size());
}

std::uint64_t buffer_digest(atl::Buffer data) {
  return digest(std::string(reinterpret_cast<const char*>(data.data()), data.size()));
}

std::uint64_t buffer_size(atl::Buffer data) {
  return data.size();
}

namespace {
atl::Buffer stashed;  // a worker process's own state: one test job at a time
}  // namespace

std::uint64_t stash(atl::Buffer data) {
  stashed = std::move(data);
  return stashed_digest();
}

std::uint64_t stashed_digest() {
  return buffer_digest(stashed);
}

int bump(atl::ActorHandle<Counter> counter, int by) {
  return counter.call(&Counter::incr, by).get();
}

int Rendezvous::meet(int parties) {
  int seen = ++inside_;
  for (int i = 0; i < 1000 && seen < parties; ++i) {
    std::this_thread::sleep_for(std::chrono::milliseconds(10));
    seen = inside_.load();
  }
  return seen;
}

}  // namespace job

ATOLL_MODULE(test_job, reg) {
  reg.function("add", &job::add)
      .function("greet", &job::greet)
      .function("fails", &job::fails)
      .function("segfault", &job::segfault)
      .function("aborts", &job::aborts)
      .function("exits", &job::exits)
      .function("nested", &job::nested)
      .function("call_by_name", &job::call_by_name)
      .function("call_python", &job::call_python)
      .function("length_of", &job::length_of)
      .function("bump", &job::bump)
      .function("sleep_then", &job::sleep_then)
      .function("blob", &job::blob)
      .function("slow_blob", &job::slow_blob)
      .function("digest", &job::digest)
      .function("buffer_blob", &job::buffer_blob)
      .function("buffer_digest", &job::buffer_digest)
      .function("buffer_size", &job::buffer_size)
      .function("stash", &job::stash)
      .function("stashed_digest", &job::stashed_digest);
  reg.actor<job::Counter>("Counter")
      .constructor<int>()
      .method("incr", &job::Counter::incr)
      .method("value", &job::Counter::value)
      .method("fail", &job::Counter::fail)
      .method("crash", &job::Counter::crash)
      .method("slow_incr", &job::Counter::slow_incr)
      .method("pid", &job::Counter::pid)
      .method("measure", &job::Counter::measure)
      .method("make", &job::Counter::make)
      .method("measure_then_incr", &job::Counter::measure_then_incr);
  reg.actor<job::Relay>("Relay")
      .constructor<atl::ActorHandle<job::Counter>, atl::ObjectRef<std::string>>()
      .method("forward", &job::Relay::forward)
      .method("text_length", &job::Relay::text_length);
  reg.actor<job::Faulty>("Faulty").constructor<int>().method("value", &job::Faulty::value);
  reg.actor<job::Rendezvous>("Rendezvous").method("meet", &job::Rendezvous::meet);
}
