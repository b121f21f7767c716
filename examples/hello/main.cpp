// hello: remote tasks, chained ObjectRefs, an actor, a zero-copy buffer and an error that travels
// back to the caller — on the embedded runtime (no server to start).
#include <atoll/atoll.hpp>

#include <iostream>
#include <stdexcept>
#include <string>
#include <vector>

namespace {

int add(int a, int b) {
  return a + b;
}

std::vector<int> squares(int n) {
  std::vector<int> out;
  for (int i = 0; i < n; ++i) out.push_back(i * i);
  return out;
}

long sum(std::vector<int> values) {
  long total = 0;
  for (int v : values) total += v;
  return total;
}

// A task that submits tasks of its own and waits for them.
int fib(atl::RuntimeRef rt, int n) {
  if (n < 2) return n;
  auto a = rt.task(fib).remote(n - 1);
  auto b = rt.task(fib).remote(n - 2);
  return a.get() + b.get();
}

double checked_sqrt(double x) {
  if (x < 0) throw std::domain_error("sqrt of a negative number: " + std::to_string(x));
  return x < 1 ? x : x / 2;  // a deliberately rough estimate; the point is the error path
}

std::size_t buffer_size(atl::Buffer data) {
  return data.size();
}

struct Counter {
  explicit Counter(int start) : n(start) {}
  int incr(int by) { return n += by; }
  int n;
};

ATOLL_MODULE(hello, reg) {
  reg.function("add", &add);
  reg.function("squares", &squares);
  reg.function("sum", &sum);
  reg.function("fib", &fib);
  reg.function("checked_sqrt", &checked_sqrt);
  reg.function("buffer_size", &buffer_size);
  reg.actor<Counter>("Counter").constructor<int>().method("incr", &Counter::incr);
}

}  // namespace

int main() {
  auto rt = atl::init({.modules = {hello}});

  auto three = rt.task(add).remote(1, 2);
  auto thirteen = rt.task(add).remote(three, 10);  // runs once `three` exists
  std::cout << "add(add(1, 2), 10) = " << thirteen.get() << "\n";

  auto total = rt.task(sum).remote(rt.task(squares).remote(100));
  std::cout << "sum of the first 100 squares = " << total.get() << "\n";

  std::cout << "fib(15) through nested tasks = " << rt.task(fib).remote(15).get() << "\n";

  auto counter = rt.actor<Counter>(100).options({.name = "visits"}).remote();
  for (int i = 0; i < 4; ++i) counter.call(&Counter::incr, 1);
  auto same = rt.get_actor<Counter>("visits");
  std::cout << "counter after 5 calls = " << same->call(&Counter::incr, 1).get() << "\n";

  auto block = rt.create_buffer(64 << 20);
  auto data = rt.put(std::move(block));
  std::cout << "a 64 MiB buffer reached a task without a copy: "
            << rt.task(buffer_size).remote(data).get() << " bytes\n";

  try {
    rt.task(checked_sqrt).options({.name = "sqrt(-1)"}).remote(-1.0).get();
  } catch (const atl::TaskError& e) {
    std::cout << "error came back: " << e.what() << "\n";
  }

  auto stats = rt.stats();
  std::cout << "tasks run: " << stats.tasks_finished << ", worker threads: " << stats.worker_threads
            << ", nodes: " << stats.nodes << "\n";
  return 0;
}
