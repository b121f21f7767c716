// object_transfer_gigabytes: one large object (1 GiB by default) from this process to a receiver
// process over loopback, through the data plane on each backend, printed beside raw baselines
// measured in the same run on the same link:
//   raw TCP       one plain TCP stream between two processes, memory to memory (a small sender and
//                 receiver of our own: send() from a 1 GiB buffer and recv() into one, 1 MiB per
//                 call, the fastest call size on our test machine; --raw-piece changes it)
//   ucx_perftest  UCX's own tag bandwidth test over its tcp transport (ucx-utils), same size
// Each round moves the object once on every path in turn (so the machine's drift hits them all
// alike); a figure is the median of --repeat rounds after a warm-up round. ucx_perftest runs on
// its own afterwards. The receiver allocates through the data plane's allocate callback from a
// BufferPool, as a node's object store does, so after the warm-up its block is reused rather than
// faulted in again; the raw receiver reuses one buffer likewise.
//
//   node agents   the object held by one node agent of a local cluster and read by a task on
//                 another node agent: the path a task's argument takes between nodes
//
//   atoll_object_transfer [--size BYTES] [--repeat N] [--streams N] [--backends tcp,ucx]
//                         [--ucx-tls tcp] [--raw-piece BYTES] [--no-perftest] [--no-nodes]
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <asio.hpp>
#include <chrono>
#include <cstdio>
#include <cstring>
#include <iostream>
#include <limits>
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

#include "benchmarks/local_cluster.hpp"
#include "runtime/buffer_pool.hpp"
#include "transport/auth.hpp"
#include "transport/data_plane.hpp"
#include "transport/frame.hpp"

extern char** environ;

namespace {

using namespace atl;
using namespace atl::transport;
using Clock = std::chrono::steady_clock;
using Args = std::map<std::string, std::string>;

std::string arg(const Args& a, const std::string& key, const std::string& fallback) {
  auto it = a.find(key);
  return it == a.end() ? fallback : it->second;
}

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

double median(std::vector<double> v) {
  std::sort(v.begin(), v.end());
  return v.empty() ? 0 : v[v.size() / 2];
}

// A child process running this program in another role, its stdout on a pipe.
class Child {
 public:
  explicit Child(std::vector<std::string> args, std::vector<std::string> extra_env = {}) {
    int out[2], in[2];
    if (::pipe(out) != 0 || ::pipe(in) != 0) throw std::runtime_error("pipe failed");
    posix_spawn_file_actions_t fa;
    posix_spawn_file_actions_init(&fa);
    posix_spawn_file_actions_adddup2(&fa, out[1], STDOUT_FILENO);
    posix_spawn_file_actions_adddup2(&fa, in[0], STDIN_FILENO);
    for (int fd : {out[0], out[1], in[0], in[1]}) posix_spawn_file_actions_addclose(&fa, fd);
    std::vector<std::string> env_strings = std::move(extra_env);
    for (char** e = environ; *e; ++e) env_strings.emplace_back(*e);
    std::vector<char*> argv, env;
    for (auto& s : args) argv.push_back(s.data());
    argv.push_back(nullptr);
    for (auto& s : env_strings) env.push_back(s.data());
    env.push_back(nullptr);
    const std::string& path = args.front();
    int rc = path.find('/') == std::string::npos
                 ? ::posix_spawnp(&pid_, path.c_str(), &fa, nullptr, argv.data(), env.data())
                 : ::posix_spawn(&pid_, path.c_str(), &fa, nullptr, argv.data(), env.data());
    posix_spawn_file_actions_destroy(&fa);
    ::close(out[1]);
    ::close(in[0]);
    out_ = out[0];
    in_ = in[1];
    if (rc != 0) throw std::runtime_error("cannot start " + path);
  }
  ~Child() {
    ::close(in_);  // the receivers exit when their stdin closes
    int status = 0;
    for (int i = 0; i < 500; ++i) {
      if (::waitpid(pid_, &status, WNOHANG) == pid_) {
        ::close(out_);
        return;
      }
      ::usleep(10'000);
    }
    ::kill(pid_, SIGKILL);
    ::waitpid(pid_, &status, 0);
    ::close(out_);
  }
  // The next line of output, within `timeout`.
  std::optional<std::string> line(std::chrono::seconds timeout = std::chrono::seconds(120)) {
    const auto deadline = Clock::now() + timeout;
    while (buffer_.find('\n') == std::string::npos) {
      pollfd p{out_, POLLIN, 0};
      if (Clock::now() > deadline || ::poll(&p, 1, 100) < 0) return std::nullopt;
      if (!(p.revents & (POLLIN | POLLHUP))) continue;
      char buf[4096];
      ssize_t n = ::read(out_, buf, sizeof buf);
      if (n <= 0) return std::nullopt;
      buffer_.append(buf, static_cast<std::size_t>(n));
    }
    auto nl = buffer_.find('\n');
    std::string l = buffer_.substr(0, nl);
    buffer_.erase(0, nl + 1);
    return l;
  }
  std::string rest() {
    std::string all = buffer_;
    while (auto l = line(std::chrono::seconds(120))) all += *l + "\n";
    return all;
  }

 private:
  pid_t pid_ = -1;
  int out_ = -1, in_ = -1;
  std::string buffer_;
};

void wait_for_stdin_eof() {
  char c;
  while (::read(STDIN_FILENO, &c, 1) > 0) {
  }
}

// ---- raw TCP ----------------------------------------------------------------------------------

int raw_receiver(std::size_t size, int transfers, std::size_t piece) {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  std::printf("port %u\n", acceptor.local_endpoint().port());
  std::fflush(stdout);
  asio::ip::tcp::socket socket(io);
  acceptor.accept(socket);
  socket.set_option(asio::ip::tcp::no_delay(true));
  std::vector<std::byte> buffer(size, std::byte{1});  // touched: no page faults while timing
  const int fd = socket.native_handle();
  for (int t = 0; t < transfers; ++t) {
    std::size_t got = 0;
    while (got < size) {
      ssize_t n = ::recv(fd, buffer.data() + got, std::min(piece, size - got), 0);
      if (n <= 0) return 1;
      got += static_cast<std::size_t>(n);
    }
    const std::byte ack{1};
    if (!send_all(fd, {&ack, 1})) return 1;
  }
  return 0;
}

// One plain TCP connection to a raw receiver process.
class RawLink {
 public:
  RawLink(const std::string& self, std::size_t size, int transfers, std::size_t piece)
      : child_({self, "--role", "raw-receiver", "--size", std::to_string(size), "--transfers",
                std::to_string(transfers), "--raw-piece", std::to_string(piece)}),
        piece_(piece),
        socket_(io_) {
    auto port = child_.line();
    if (!port || !port->starts_with("port "))
      throw std::runtime_error("raw receiver did not start");
    socket_.connect({asio::ip::make_address("127.0.0.1"),
                     static_cast<std::uint16_t>(std::stoi(port->substr(5)))});
    socket_.set_option(asio::ip::tcp::no_delay(true));
  }
  // Seconds to send `object` and have the receiver acknowledge every byte.
  double transfer(std::span<const std::byte> object) {
    auto t0 = Clock::now();
    for (std::size_t at = 0; at < object.size(); at += piece_)
      if (!send_all(socket_.native_handle(),
                    object.subspan(at, std::min(piece_, object.size() - at))))
        throw std::runtime_error("raw send failed");
    std::byte ack;
    if (::recv(socket_.native_handle(), &ack, 1, MSG_WAITALL) != 1)
      throw std::runtime_error("raw receiver failed");
    return seconds_since(t0);
  }

 private:
  Child child_;
  std::size_t piece_;
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
};

// ---- the data plane ---------------------------------------------------------------------------

DataPlaneOptions plane_options(const Args& a, const char* name) {
  DataPlaneOptions o;
  o.token = std::getenv("ATOLL_BENCH_TOKEN");
  o.name = name;
  o.backend = arg(a, "--backend", "tcp") == "ucx" ? DataBackend::ucx : DataBackend::tcp;
  o.ucx_transports = arg(a, "--ucx-tls", "tcp");
  if (a.contains("--chunk"))
    o.chunk_bytes = static_cast<std::uint32_t>(std::stoul(a.at("--chunk")));
  if (a.contains("--window")) o.window_bytes = std::stoull(a.at("--window"));
  return o;
}

int plane_receiver(const Args& a) {
  auto pool = runtime::BufferPool::create(8ull << 30);
  DataPlane plane(
      plane_options(a, "bench-receiver"),
      {.allocate =
           [pool](const IncomingObject& o) { return Allocation::accept(pool->allocate(o.size)); },
       .on_received = [](const IncomingObject&, MutableBuffer) {}});
  if (plane.backend() != plane_options(a, "").backend) {
    std::printf("error %s\n", plane.fallback_reason().c_str());
    return 1;
  }
  std::printf("address %s\n", plane.address().to_string().c_str());
  std::fflush(stdout);
  wait_for_stdin_eof();
  return 0;
}

// A receiver process on one backend, and this process's plane and channels to it.
class PlaneLink {
 public:
  PlaneLink(const std::string& self, const Args& a)
      : child_({self, "--role", "receiver", "--backend", arg(a, "--backend", "tcp"), "--ucx-tls",
                arg(a, "--ucx-tls", "tcp"), "--chunk",
                arg(a, "--chunk", std::to_string(DataPlaneOptions{}.chunk_bytes)), "--window",
                arg(a, "--window", std::to_string(DataPlaneOptions{}.window_bytes))}) {
    auto line = child_.line();
    if (!line || !line->starts_with("address "))
      throw std::runtime_error("the receiver did not start: " + line.value_or("(nothing)"));
    address_ = DataAddress::parse(line->substr(8));
    plane_.emplace(plane_options(a, "bench-sender"), ReceiveHandlers{});
  }
  DataChannelPtr channel(std::size_t streams) {
    return plane_->connect(address_, {.streams = streams}, std::chrono::seconds(30));
  }

 private:
  Child child_;
  DataAddress address_;
  std::optional<DataPlane> plane_;
};

// Seconds to send `object` on `channel` until the receiver holds every byte.
double transfer(DataChannel& channel, const Buffer& object, std::uint64_t n) {
  auto t0 = Clock::now();
  channel.send_and_wait({1, n}, object, std::chrono::minutes(10));
  return seconds_since(t0);
}

// ---- node agents ------------------------------------------------------------------------------

// The object made by a task on one node agent of a local cluster (`atoll up`, two islands of one
// node), then read by a task on the other: that node fetches it from the first node's data plane
// into its shared memory and lends it to its worker, which returns the size. One transfer is one
// such task, submitted and awaited by this process as the driver: every hop is counted.
class NodeLink {
 public:
  explicit NodeLink(std::size_t size)
      : size_(size),
        // Room for the object in each node's store (30% of its memory) and for its block in the
        // reader's pool of reusable shared memory (a quarter of the store).
        cluster_({.islands = 2,
                  .nodes_per_island = 1,
                  .cpus = 1,
                  .memory = std::to_string(std::max<std::size_t>(16 * size >> 20, 4096)) + "M"}) {
    auto& rt = cluster_.runtime();
    object_ =
        rt.task(job::buffer_blob).options(on_island("island-0")).remote(static_cast<int>(size), 1);
    std::vector<atl::ObjectRef<Buffer>> refs{*object_};
    if (rt.wait(refs, 1, std::chrono::minutes(5)).ready.size() != 1)
      throw std::runtime_error("the object was not made on the first node in time");
  }

  double transfer() {
    auto t0 = Clock::now();
    std::uint64_t got = cluster_.runtime()
                            .task(job::buffer_size)
                            .options(on_island("island-1"))
                            .remote(*object_)
                            .get(std::chrono::minutes(5));
    double secs = seconds_since(t0);
    if (got != size_) throw std::runtime_error("the second node read a different size");
    return secs;
  }

 private:
  static atl::TaskOptions on_island(const std::string& island) {
    return {.label_selector = {atl::LabelSelector::equals("island", island)}};
  }
  std::size_t size_;
  bench::LocalCluster cluster_;
  std::optional<atl::ObjectRef<Buffer>> object_;
};

// ---- ucx_perftest -----------------------------------------------------------------------------

// UCX's tag bandwidth test over loopback: GB/s, or nullopt when it cannot run.
std::optional<double> perftest(std::size_t size, int repeat, const std::string& tls) {
  const std::string port = std::to_string(20000 + ::getpid() % 20000);
  const std::vector<std::string> common = {
      "-p", port, "-t", "tag_bw", "-s", std::to_string(size), "-n", std::to_string(repeat),
      "-w", "1"};
  std::vector<std::string> env = {"UCX_TLS=" + tls};
  try {
    std::vector<std::string> server_args{"ucx_perftest"};
    server_args.insert(server_args.end(), common.begin(), common.end());
    Child server(server_args, env);
    ::usleep(500'000);
    std::vector<std::string> client_args{"ucx_perftest", "127.0.0.1"};
    client_args.insert(client_args.end(), common.begin(), common.end());
    Child client(client_args, env);
    std::string out = client.rest();
    auto at = out.find("Final:");
    if (at == std::string::npos) return std::nullopt;
    // Final: iterations, latency 50%, average, overall, bandwidth average, overall (MiB/s), ...
    std::vector<double> fields;
    std::istringstream in(out.substr(at + 6));
    double v;
    while (fields.size() < 6 && in >> v) fields.push_back(v);
    if (fields.size() < 6) return std::nullopt;
    return fields[5] * 1048576.0 / 1e9;
  } catch (const std::exception&) {
    return std::nullopt;
  }
}

}  // namespace

int main(int argc, char** argv) {
  Args a;
  for (int i = 1; i < argc; ++i) {
    std::string key = argv[i];
    a[key] = (i + 1 < argc && std::string(argv[i + 1]).rfind("--", 0) != 0) ? argv[++i] : "1";
  }
  const std::string role = arg(a, "--role", "");
  const std::size_t size = std::stoull(arg(a, "--size", std::to_string(1ull << 30)));
  const std::size_t raw_piece = std::stoull(arg(a, "--raw-piece", std::to_string(1u << 20)));
  if (role == "raw-receiver")
    return raw_receiver(size, std::stoi(arg(a, "--transfers", "1")), raw_piece);
  if (role == "receiver") return plane_receiver(a);

  const int repeat = std::stoi(arg(a, "--repeat", "7"));
  const std::size_t streams = std::stoul(arg(a, "--streams", "4"));
  const std::string self = "/proc/self/exe";
  if (!std::getenv("ATOLL_BENCH_TOKEN")) ::setenv("ATOLL_BENCH_TOKEN", generate_token().c_str(), 1);
  std::vector<std::string> backends = {"tcp"};
#ifdef ATOLL_WITH_UCX
  backends.push_back("ucx");
#endif
  if (a.contains("--backends")) {
    backends.clear();
    std::istringstream in(a["--backends"]);
    for (std::string b; std::getline(in, b, ',');) backends.push_back(b);
  }

  MutableBuffer filled = MutableBuffer::allocate(size);
  for (std::size_t i = 0; i < size; i += 4096) filled.data()[i] = std::byte(i >> 12);
  const Buffer object = std::move(filled).freeze();

  std::printf(
      "object_transfer_gigabytes: a %.2f GiB object between two processes over loopback\n"
      "(median of %d rounds after a warm-up round; each round runs every path once, interleaved;\n"
      " min-max in brackets; GB = 10^9 bytes; raw TCP moves %zu KiB per send()/recv() call)\n",
      size / double(1ull << 30), repeat, raw_piece / 1024);

  struct Path {
    std::string name, backend;
    DataChannelPtr channel;  // null: raw TCP or the node agents
    std::vector<double> rates;
    NodeLink* nodes = nullptr;
  };
  RawLink raw_link(self, size, repeat + 1, raw_piece);
  std::vector<std::unique_ptr<PlaneLink>> links;
  std::vector<Path> paths{{"raw TCP, one stream (baseline)", "", nullptr, {}}};
  std::unique_ptr<NodeLink> node_link;
  if (!a.contains("--no-nodes")) {
    if (size > static_cast<std::size_t>(std::numeric_limits<int>::max()))
      throw std::runtime_error("--size: the node agents' path takes at most 2 GiB - 1");
    node_link = std::make_unique<NodeLink>(size);
    paths.push_back(
        {"node agent to node agent (a task's argument)", "", nullptr, {}, node_link.get()});
  }
  const std::string tls = arg(a, "--ucx-tls", "tcp");
  for (const auto& backend : backends) {
    Args b = a;
    b["--backend"] = backend;
    links.push_back(std::make_unique<PlaneLink>(self, b));
    std::vector<std::size_t> stream_counts{1};
    if (streams != 1) stream_counts.push_back(streams);
    for (std::size_t s : stream_counts)
      paths.push_back({"data plane " + backend +
                           (backend == "ucx" ? " (UCX_TLS=" + tls + ")" : "") + ", " +
                           std::to_string(s) + (s == 1 ? " stream" : " streams"),
                       backend,
                       links.back()->channel(s),
                       {}});
  }
  for (int round = 0; round <= repeat; ++round) {
    for (auto& p : paths) {
      const double secs = p.channel
                              ? transfer(*p.channel, object, static_cast<std::uint64_t>(round))
                          : p.nodes ? p.nodes->transfer()
                                    : raw_link.transfer(object.bytes());
      if (round > 0) p.rates.push_back(size / secs / 1e9);
    }
  }
  std::optional<double> ucx_raw;
#ifdef ATOLL_WITH_UCX
  if (!a.contains("--no-perftest")) ucx_raw = perftest(size, repeat, tls);
#endif
  const double raw = median(paths.front().rates);
  auto print = [&](const std::string& name, double gbps, const std::vector<double>& rates,
                   const std::string& note) {
    char spread[64] = "";
    if (!rates.empty())
      std::snprintf(spread, sizeof spread, "[%.2f-%.2f]",
                    *std::min_element(rates.begin(), rates.end()),
                    *std::max_element(rates.begin(), rates.end()));
    std::printf("  %-46s %6.2f GB/s %-12s %5.2f x raw TCP%s\n", name.c_str(), gbps, spread,
                gbps / raw, note.c_str());
  };
  for (const auto& p : paths) {
    std::string note;
    if (p.backend == "ucx" && ucx_raw) {
      char buf[64];
      std::snprintf(buf, sizeof buf, ", %.2f x ucx_perftest", median(p.rates) / *ucx_raw);
      note = buf;
    }
    print(p.name, median(p.rates), p.rates, note);
    if (p.channel == nullptr && p.nodes == nullptr && ucx_raw)
      print("ucx_perftest tag_bw, UCX_TLS=" + tls + " (baseline)", *ucx_raw, {},
            " (its own run, after the rounds)");
  }
#ifdef ATOLL_WITH_UCX
  if (!ucx_raw && !a.contains("--no-perftest"))
    std::printf("  ucx_perftest: not run (is ucx-utils installed?)\n");
#endif
  return 0;
}
