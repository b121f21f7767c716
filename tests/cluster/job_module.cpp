// A job's task module, built as a shared library the way a user's would be: it registers its
// functions with ATOLL_MODULE and resolves atoll's symbols against the worker that loads it.
#include <atoll/atoll.hpp>

#include <csignal>
#include <cstdlib>
#include <stdexcept>
#include <string>

namespace {

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

}  // namespace

ATOLL_MODULE(test_job, reg) {
  reg.function("add", &add)
      .function("greet", &greet)
      .function("fails", &fails)
      .function("segfault", &segfault)
      .function("aborts", &aborts)
      .function("exits", &exits)
      .function("nested", &nested);
}
