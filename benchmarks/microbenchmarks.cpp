// Ray's core microbenchmarks (python/ray/_private/ray_perf.py), on the embedded runtime.
//
// Names match Ray's metrics so figures compare one to one; each reports items_per_second (tasks,
// calls, puts, gets, or 1,000-ref waits per second) and single_client_put_gigabytes reports
// bytes_per_second. Run: build/benchmarks/atoll_microbenchmarks [--benchmark_filter=...]
#include <benchmark/benchmark.h>
#include <atoll/atoll.hpp>

#include <algorithm>
#include <cstring>
#include <thread>
#include <vector>

namespace {

int small_value() {
  return 0;
}

struct Actor {
  int small_value() { return 0; }
};

// multi_client_tasks_async: a client of its own, submitting tasks from an actor.
struct Submitter {
  int small_value_batch(atl::RuntimeRef rt, int n) {
    std::vector<atl::ObjectRef<int>> refs;
    refs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) refs.push_back(rt.task(small_value).remote());
    rt.get(refs);
    return n;
  }
};

// n_n_actor_calls_async: an actor calling its own server actor.
struct Client {
  explicit Client(atl::ActorHandle<Actor> server) : server(std::move(server)) {}
  int small_value_batch(atl::RuntimeRef rt, int n) {
    std::vector<atl::ObjectRef<int>> refs;
    refs.reserve(static_cast<std::size_t>(n));
    for (int i = 0; i < n; ++i) refs.push_back(server.call(&Actor::small_value));
    rt.get(refs);
    return n;
  }
  atl::ActorHandle<Actor> server;
};

ATOLL_MODULE(bench_module, reg) {
  reg.function("small_value", &small_value);
  reg.actor<Actor>("Actor").method("small_value", &Actor::small_value);
  reg.actor<Submitter>("Submitter").method("small_value_batch", &Submitter::small_value_batch);
  reg.actor<Client>("Client").constructor<atl::ActorHandle<Actor>>().method(
      "small_value_batch", &Client::small_value_batch);
}

constexpr int kBatch = 10'000;

atl::Runtime& runtime() {
  static atl::Runtime rt = atl::init({.modules = {bench_module}});
  return rt;
}

void single_client_tasks_sync(benchmark::State& state) {
  auto& rt = runtime();
  for (auto _ : state) benchmark::DoNotOptimize(rt.task(small_value).remote().get());
  state.SetItemsProcessed(state.iterations());
}

void single_client_tasks_async(benchmark::State& state) {
  auto& rt = runtime();
  std::vector<atl::ObjectRef<int>> refs;
  refs.reserve(kBatch);
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < kBatch; ++i) refs.push_back(rt.task(small_value).remote());
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void actor_calls_sync(benchmark::State& state) {
  auto& rt = runtime();
  auto actor = rt.actor<Actor>().remote();
  for (auto _ : state) benchmark::DoNotOptimize(actor.call(&Actor::small_value).get());
  state.SetItemsProcessed(state.iterations());
}

void actor_calls_async(benchmark::State& state) {
  auto& rt = runtime();
  auto actor = rt.actor<Actor>().remote();
  std::vector<atl::ObjectRef<int>> refs;
  refs.reserve(kBatch);
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < kBatch; ++i) refs.push_back(actor.call(&Actor::small_value));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void single_client_put_calls(benchmark::State& state) {
  auto& rt = runtime();
  for (auto _ : state) benchmark::DoNotOptimize(rt.put(0));
  state.SetItemsProcessed(state.iterations());
}

void single_client_get_calls(benchmark::State& state) {
  auto& rt = runtime();
  auto ref = rt.put(0);
  for (auto _ : state) benchmark::DoNotOptimize(ref.get());
  state.SetItemsProcessed(state.iterations());
}

// Like Ray's (which copies a numpy array into Plasma), each put copies 100 MiB of the caller's
// data into store memory: one memcpy into a pooled block, then a zero-copy seal.
void single_client_put_gigabytes(benchmark::State& state) {
  auto& rt = runtime();
  constexpr std::size_t kSize = 100u << 20;
  std::vector<std::byte> source(kSize, std::byte{1});
  for (auto _ : state) {
    atl::MutableBuffer buffer = rt.create_buffer(kSize);
    std::memcpy(buffer.data(), source.data(), kSize);
    benchmark::DoNotOptimize(rt.put(std::move(buffer)));
  }
  state.SetBytesProcessed(state.iterations() * static_cast<std::int64_t>(kSize));
  state.SetItemsProcessed(state.iterations());
}

// One item: 1,000 tasks submitted, then waited for one ready ref at a time until none is left.
void single_client_wait_1k_refs(benchmark::State& state) {
  auto& rt = runtime();
  for (auto _ : state) {
    std::vector<atl::ObjectRef<int>> not_ready;
    not_ready.reserve(1000);
    for (int i = 0; i < 1000; ++i) not_ready.push_back(rt.task(small_value).remote());
    while (!not_ready.empty()) not_ready = rt.wait(not_ready, 1).not_ready;
  }
  state.SetItemsProcessed(state.iterations());
}

int clients() {
  return static_cast<int>(std::max(2u, std::thread::hardware_concurrency()));
}

void multi_client_tasks_async(benchmark::State& state) {
  auto& rt = runtime();
  std::vector<atl::ActorHandle<Submitter>> submitters;
  for (int i = 0; i < clients(); ++i) submitters.push_back(rt.actor<Submitter>().remote());
  const int per_client = kBatch / clients();
  std::vector<atl::ObjectRef<int>> refs;
  for (auto _ : state) {
    refs.clear();
    for (auto& s : submitters) refs.push_back(s.call(&Submitter::small_value_batch, per_client));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * per_client * clients());
}

void one_to_n_actor_calls_async(benchmark::State& state) {
  auto& rt = runtime();
  std::vector<atl::ActorHandle<Actor>> actors;
  for (int i = 0; i < clients(); ++i) actors.push_back(rt.actor<Actor>().remote());
  std::vector<atl::ObjectRef<int>> refs;
  refs.reserve(kBatch);
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < kBatch; ++i)
      refs.push_back(actors[static_cast<std::size_t>(i) % actors.size()].call(&Actor::small_value));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

void n_n_actor_calls_async(benchmark::State& state) {
  auto& rt = runtime();
  std::vector<atl::ActorHandle<Client>> callers;
  for (int i = 0; i < clients(); ++i)
    callers.push_back(rt.actor<Client>(rt.actor<Actor>().remote()).remote());
  const int per_client = kBatch / clients();
  std::vector<atl::ObjectRef<int>> refs;
  for (auto _ : state) {
    refs.clear();
    for (auto& c : callers) refs.push_back(c.call(&Client::small_value_batch, per_client));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * per_client * clients());
}

// One item: a batch of 1,000 tasks submitted and read (Ray's figure is batches per second).
void single_client_tasks_and_get_batch(benchmark::State& state) {
  auto& rt = runtime();
  std::vector<atl::ObjectRef<int>> refs;
  refs.reserve(1000);
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < 1000; ++i) refs.push_back(rt.task(small_value).remote());
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations());
}

}  // namespace

int main(int argc, char** argv) {
  auto reg = [](const char* name, void (*fn)(benchmark::State&)) {
    benchmark::RegisterBenchmark(name, fn)->UseRealTime();
  };
  reg("single_client_tasks_sync", single_client_tasks_sync);
  reg("single_client_tasks_async", single_client_tasks_async);
  reg("1_1_actor_calls_sync", actor_calls_sync);
  reg("1_1_actor_calls_async", actor_calls_async);
  reg("single_client_put_calls", single_client_put_calls);
  reg("single_client_get_calls", single_client_get_calls);
  reg("single_client_put_gigabytes", single_client_put_gigabytes);
  reg("single_client_wait_1k_refs", single_client_wait_1k_refs);
  reg("multi_client_tasks_async", multi_client_tasks_async);
  reg("1_n_actor_calls_async", one_to_n_actor_calls_async);
  reg("n_n_actor_calls_async", n_n_actor_calls_async);
  reg("single_client_tasks_and_get_batch", single_client_tasks_and_get_batch);
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  runtime().shutdown();
  return 0;
}
