// Round trips of the cluster's building blocks, each beside its raw baseline measured in the
// same run on the same machine:
//   control_request_round_trip  an authenticated control connection: Ping -> Pong (Asio, framing,
//                               Cap'n Proto encode/decode/validate on both sides)
//   raw_tcp_round_trip          32 bytes echoed over a loopback TCP socket (the floor)
//   worker_task_round_trip      add(1, 2) run in a crash-isolated worker process
//   raw_socketpair_round_trip   32 bytes echoed over a Unix socketpair (the floor)
//   single_client_tasks_sync    Ray's metric across processes: driver -> head -> node -> worker
//   single_client_tasks_async   the same, 1,000 tasks submitted, then all results got
//   1_1_actor_calls_sync        one actor's method, called and awaited one at a time
//   1_1_actor_calls_async       1,000 calls to one actor submitted, then all results got
//   n_n_actor_calls_async       n drivers (connections) each calling n named actors round-robin
//   multi_client_tasks_async    n drivers, each its own thread, submitting 1,000 tasks each
//   1_n_actor_calls_async       one driver's 1,000 calls spread over n actors
//   single_client_tasks_and_get_batch, single_client_wait_1k_refs, single_client_put_calls,
//   single_client_get_calls, single_client_put_gigabytes: as on the embedded runtime, from a
//                               cluster driver (puts and gets stay in the driver's own store)
#include <benchmark/benchmark.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <optional>
#include <thread>

#include "atoll/atoll.hpp"
#include "atoll/serialization.hpp"
#include "benchmarks/local_cluster.hpp"
#include "runtime/module_store.hpp"
#include "runtime/worker_process.hpp"
#include "tests/cluster/job_module.hpp"
#include "transport/connection.hpp"

namespace {

using namespace std::chrono_literals;

void control_request_round_trip(benchmark::State& state) {
  asio::io_context io;
  auto work = asio::make_work_guard(io);
  std::string token = atl::transport::generate_token();
  atl::transport::Listener head(io, {asio::ip::make_address("127.0.0.1"), 0}, {.token = token}, {});
  std::atomic<std::uint64_t> pongs{0};
  atl::transport::Handlers handlers;
  handlers.on_message = [&](const atl::transport::ConnectionPtr&,
                            const atl::transport::Decoded<atl::wire::Envelope>& m) {
    if (m.root().getBody().isPong()) {
      pongs.fetch_add(1);
      pongs.notify_one();
    }
  };
  std::thread io_thread([&] { io.run(); });
  std::promise<atl::transport::ConnectionPtr> dialled;
  atl::transport::dial(io, "127.0.0.1", head.port(), {.token = token, .name = "bench"}, handlers,
                       [&](atl::transport::ConnectionPtr c, std::string) { dialled.set_value(c); });
  auto conn = dialled.get_future().get();
  for (auto _ : state) {
    std::uint64_t before = pongs.load();
    conn->ping();
    pongs.wait(before);
  }
  state.SetItemsProcessed(state.iterations());
  conn->close("done");
  asio::post(io, [&] { head.close(); });
  work.reset();
  io.stop();
  io_thread.join();
}

// Echoes 32-byte messages on `fd` until the peer closes it.
std::thread echo(int fd) {
  return std::thread([fd] {
    char buf[32];
    for (;;) {
      std::size_t got = 0;
      while (got < sizeof buf) {
        ssize_t n = ::recv(fd, buf + got, sizeof buf - got, 0);
        if (n <= 0) return;
        got += static_cast<std::size_t>(n);
      }
      if (::send(fd, buf, sizeof buf, MSG_NOSIGNAL) != static_cast<ssize_t>(sizeof buf)) return;
    }
  });
}

void round_trips(benchmark::State& state, int fd) {
  char buf[32] = {};
  for (auto _ : state) {
    ::send(fd, buf, sizeof buf, MSG_NOSIGNAL);
    std::size_t got = 0;
    while (got < sizeof buf)
      got += static_cast<std::size_t>(::recv(fd, buf + got, sizeof buf - got, 0));
  }
  state.SetItemsProcessed(state.iterations());
}

void raw_tcp_round_trip(benchmark::State& state) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io), server(io);
  client.connect(acceptor.local_endpoint());
  acceptor.accept(server);
  client.set_option(asio::ip::tcp::no_delay(true));
  server.set_option(asio::ip::tcp::no_delay(true));
  auto echoer = echo(server.native_handle());
  round_trips(state, client.native_handle());
  client.close();
  echoer.join();
}

void raw_socketpair_round_trip(benchmark::State& state) {
  int fds[2];
  ::socketpair(AF_UNIX, SOCK_STREAM, 0, fds);
  auto echoer = echo(fds[1]);
  round_trips(state, fds[0]);
  ::close(fds[0]);
  echoer.join();
  ::close(fds[1]);
}

void worker_task_round_trip(benchmark::State& state) {
  namespace fs = std::filesystem;
  fs::path dir = fs::temp_directory_path() / ("atoll-bench-modules-" + std::to_string(::getpid()));
  atl::runtime::ModuleStore store(dir);
  std::ifstream in(ATOLL_TEST_JOB, std::ios::binary);
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string hash = store.put(std::as_bytes(std::span(bytes)));
  auto worker = atl::runtime::WorkerProcess::spawn(
      {{.executable = ATOLL_CLI}, store.verified_path(hash)->string(), hash, "test_job"}, 10s);
  std::string one = atl::detail::serialize(1).bytes, two = atl::detail::serialize(2).bytes;
  std::vector<atl::Buffer> args{atl::Buffer::copy_of(one.data(), one.size()),
                                atl::Buffer::copy_of(two.data(), two.size())};
  for (auto _ : state) benchmark::DoNotOptimize(worker->execute("add", args, 10s));
  state.SetItemsProcessed(state.iterations());
  worker.reset();
  fs::remove_all(dir);
}

using bench::LocalCluster;

void cluster_tasks_sync(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  for (auto _ : state) benchmark::DoNotOptimize(rt.task(job::add).remote(1, 2).get());
  state.SetItemsProcessed(state.iterations());
}

void cluster_tasks_async(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  constexpr int kBatch = 1000;
  std::vector<atl::ObjectRef<int>> refs;
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < kBatch; ++i) refs.push_back(rt.task(job::add).remote(i, 1));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Ray's multi_client_tasks_async with n = 2 clients: each its own driver connection and thread,
// submitting its share of the batch.
void multi_client_tasks_async(benchmark::State& state) {
  constexpr int kN = 2;
  constexpr int kBatch = 1000;  // tasks per client per iteration
  LocalCluster cluster;
  std::vector<atl::Runtime> clients;
  for (int c = 0; c < kN; ++c) clients.push_back(cluster.connect());
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int c = 0; c < kN; ++c)
      threads.emplace_back([&, c] {
        std::vector<atl::ObjectRef<int>> refs;
        refs.reserve(kBatch);
        for (int i = 0; i < kBatch; ++i) refs.push_back(clients[c].task(job::add).remote(i, 1));
        benchmark::DoNotOptimize(clients[c].get(refs));
      });
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(state.iterations() * kN * kBatch);
}

// One item: a batch of 1,000 tasks submitted and read (Ray's figure is batches per second).
void tasks_and_get_batch(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  std::vector<atl::ObjectRef<int>> refs;
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < 1000; ++i) refs.push_back(rt.task(job::add).remote(i, 1));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations());
}

// One item: 1,000 tasks submitted, then waited for one ready ref at a time until none is left.
void wait_1k_refs(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  for (auto _ : state) {
    std::vector<atl::ObjectRef<int>> not_ready;
    for (int i = 0; i < 1000; ++i) not_ready.push_back(rt.task(job::add).remote(i, 1));
    while (!not_ready.empty()) not_ready = rt.wait(not_ready, 1).not_ready;
  }
  state.SetItemsProcessed(state.iterations());
}

// A cluster driver's puts and gets stay in its own store, as Ray's do in the driver's node.
void put_calls(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  for (auto _ : state) benchmark::DoNotOptimize(rt.put(0));
  state.SetItemsProcessed(state.iterations());
}

void get_calls(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  auto ref = rt.put(0);
  for (auto _ : state) benchmark::DoNotOptimize(ref.get());
  state.SetItemsProcessed(state.iterations());
}

void put_gigabytes(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
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

void actor_calls_sync(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  auto counter = rt.actor<job::Counter>().remote();
  counter.call(&job::Counter::incr, 1).get(std::chrono::seconds(30));  // placed and constructed
  for (auto _ : state) benchmark::DoNotOptimize(counter.call(&job::Counter::incr, 1).get());
  state.SetItemsProcessed(state.iterations());
}

void actor_calls_async(benchmark::State& state) {
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  auto counter = rt.actor<job::Counter>().remote();
  counter.call(&job::Counter::incr, 1).get(std::chrono::seconds(30));
  constexpr int kBatch = 1000;
  std::vector<atl::ObjectRef<int>> refs;
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < kBatch; ++i) refs.push_back(counter.call(&job::Counter::incr, 1));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Ray's 1_n_actor_calls_async with n = 2: one caller, calls spread round-robin over n actors.
void one_to_n_actor_calls_async(benchmark::State& state) {
  constexpr int kN = 2;
  constexpr int kBatch = 1000;
  LocalCluster cluster;
  auto& rt = cluster.runtime();
  std::vector<atl::ActorHandle<job::Counter>> actors;
  for (int i = 0; i < kN; ++i) {
    actors.push_back(rt.actor<job::Counter>().remote());
    actors.back().call(&job::Counter::incr, 1).get(std::chrono::seconds(30));
  }
  std::vector<atl::ObjectRef<int>> refs;
  for (auto _ : state) {
    refs.clear();
    for (int i = 0; i < kBatch; ++i) refs.push_back(actors[i % kN].call(&job::Counter::incr, 1));
    benchmark::DoNotOptimize(rt.get(refs));
  }
  state.SetItemsProcessed(state.iterations() * kBatch);
}

// Ray's n_n_actor_calls_async with n = 2 (this machine's cores): n callers, each its own driver
// connection, calling n actors round-robin.
void n_n_actor_calls_async(benchmark::State& state) {
  constexpr int kN = 2;
  constexpr int kBatch = 1000;  // calls per caller per iteration
  LocalCluster cluster;
  auto& owner = cluster.runtime();
  std::vector<atl::ActorHandle<job::Counter>> actors;
  for (int i = 0; i < kN; ++i) {
    actors.push_back(
        owner.actor<job::Counter>().options({.name = "bench-" + std::to_string(i)}).remote());
    actors.back().call(&job::Counter::incr, 1).get(std::chrono::seconds(30));
  }
  std::vector<atl::Runtime> callers;
  std::vector<std::vector<atl::ActorHandle<job::Counter>>> handles(kN);
  for (int c = 0; c < kN; ++c) {
    callers.push_back(cluster.connect());
    for (int i = 0; i < kN; ++i)
      handles[c].push_back(*callers[c].get_actor<job::Counter>("bench-" + std::to_string(i)));
  }
  for (auto _ : state) {
    std::vector<std::thread> threads;
    for (int c = 0; c < kN; ++c)
      threads.emplace_back([&, c] {
        std::vector<atl::ObjectRef<int>> refs;
        refs.reserve(kBatch);
        for (int i = 0; i < kBatch; ++i)
          refs.push_back(handles[c][i % kN].call(&job::Counter::incr, 1));
        benchmark::DoNotOptimize(callers[c].get(refs));
      });
    for (auto& t : threads) t.join();
  }
  state.SetItemsProcessed(state.iterations() * kN * kBatch);
  handles.clear();
  for (auto& a : actors) owner.kill(a);
}

}  // namespace

int main(int argc, char** argv) {
  for (auto [name, fn] : std::initializer_list<std::pair<const char*, void (*)(benchmark::State&)>>{
           {"control_request_round_trip", control_request_round_trip},
           {"raw_tcp_round_trip", raw_tcp_round_trip},
           {"worker_task_round_trip", worker_task_round_trip},
           {"raw_socketpair_round_trip", raw_socketpair_round_trip},
           {"single_client_tasks_sync", cluster_tasks_sync},
           {"single_client_tasks_async", cluster_tasks_async},
           {"1_1_actor_calls_sync", actor_calls_sync},
           {"1_1_actor_calls_async", actor_calls_async},
           {"n_n_actor_calls_async", n_n_actor_calls_async},
           {"multi_client_tasks_async", multi_client_tasks_async},
           {"1_n_actor_calls_async", one_to_n_actor_calls_async},
           {"single_client_tasks_and_get_batch", tasks_and_get_batch},
           {"single_client_wait_1k_refs", wait_1k_refs},
           {"single_client_put_calls", put_calls},
           {"single_client_get_calls", get_calls},
           {"single_client_put_gigabytes", put_gigabytes}})
    benchmark::RegisterBenchmark(name, fn)->UseRealTime();
  benchmark::Initialize(&argc, argv);
  if (benchmark::ReportUnrecognizedArguments(argc, argv)) return 1;
  benchmark::RunSpecifiedBenchmarks();
  benchmark::Shutdown();
  return 0;
}
