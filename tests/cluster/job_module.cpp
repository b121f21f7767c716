// A job's task module, built as a shared library the way a user's would be: it registers its
// functions with ATOLL_MODULE and resolves atoll's symbols against the worker that loads it.
#include "tests/cluster/job_module.hpp"

#include <chrono>
#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <thread>

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
int sleep_then(int ms, int value) {
  std::this_thread::sleep_for(std::chrono::milliseconds(ms));
  return value;
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
      .function("sleep_then", &job::sleep_then);
}
