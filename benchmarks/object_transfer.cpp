// object_transfer_gigabytes: one large object (1 GiB by default) from this process to a receiver
// process over loopback, through the data plane on each backend, printed beside raw baselines
// measured in the same run on the same link:
//   raw TCP       one plain TCP stream between two processes, memory to memory (a small sender and
//                 receiver of our own: send() from a 1 GiB buffer, recv() into one)
//   ucx_perftest  UCX's own tag bandwidth test over its tcp transport (ucx-utils), same size
// Each figure is the median of --repeat transfers after one warm-up. The receiver allocates
// through the data plane's allocate callback from a BufferPool, as a node's object store does, so
// after the warm-up its block is reused rather than faulted in again.
//
//   atoll_object_transfer [--size BYTES] [--repeat N] [--streams N] [--backends tcp,ucx]
//                         [--ucx-tls tcp] [--no-perftest]
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
#include <map>
#include <optional>
#include <sstream>
#include <string>
#include <vector>

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

int raw_receiver(std::size_t size, int transfers) {
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
      ssize_t n = ::recv(fd, buffer.data() + got, size - got, 0);
      if (n <= 0) return 1;
      got += static_cast<std::size_t>(n);
    }
    const std::byte ack{1};
    if (!send_all(fd, {&ack, 1})) return 1;
  }
  return 0;
}

std::vector<double> raw_tcp(const std::string& self, std::span<const std::byte> object,
                            int repeat) {
  Child child({self, "--role", "raw-receiver", "--size", std::to_string(object.size()),
               "--transfers", std::to_string(repeat + 1)});
  auto port = child.line();
  if (!port || !port->starts_with("port ")) throw std::runtime_error("raw receiver did not start");
  asio::io_context io;
  asio::ip::tcp::socket socket(io);
  socket.connect({asio::ip::make_address("127.0.0.1"),
                  static_cast<std::uint16_t>(std::stoi(port->substr(5)))});
  socket.set_option(asio::ip::tcp::no_delay(true));
  std::vector<double> rates;
  for (int t = 0; t <= repeat; ++t) {
    auto t0 = Clock::now();
    if (!send_all(socket.native_handle(), object)) throw std::runtime_error("raw send failed");
    std::byte ack;
    if (::recv(socket.native_handle(), &ack, 1, MSG_WAITALL) != 1)
      throw std::runtime_error("raw receiver failed");
    if (t > 0) rates.push_back(object.size() / seconds_since(t0) / 1e9);
  }
  return rates;
}

// ---- the data plane ---------------------------------------------------------------------------

DataPlaneOptions plane_options(const Args& a, const char* name) {
  DataPlaneOptions o;
  o.token = std::getenv("ATOLL_BENCH_TOKEN");
  o.name = name;
  o.backend = arg(a, "--backend", "tcp") == "ucx" ? DataBackend::ucx : DataBackend::tcp;
  o.ucx_transports = arg(a, "--ucx-tls", "tcp");
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

std::vector<double> data_plane(const std::string& self, const Args& a, const Buffer& object,
                               int repeat, std::size_t streams) {
  const std::string backend = arg(a, "--backend", "tcp");
  Child child(
      {self, "--role", "receiver", "--backend", backend, "--ucx-tls", arg(a, "--ucx-tls", "tcp")});
  auto line = child.line();
  if (!line || !line->starts_with("address "))
    throw std::runtime_error("the receiver did not start: " + line.value_or("(nothing)"));
  DataPlane plane(plane_options(a, "bench-sender"), {});
  auto channel = plane.connect(DataAddress::parse(line->substr(8)), {.streams = streams},
                               std::chrono::seconds(30));
  std::vector<double> rates;
  for (int t = 0; t <= repeat; ++t) {
    auto t0 = Clock::now();
    channel->send({1, static_cast<std::uint64_t>(t)}, object).get();
    if (t > 0) rates.push_back(object.size() / seconds_since(t0) / 1e9);
  }
  return rates;
}

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

void row(const std::string& what, double gbps, double baseline, const std::string& note = "") {
  std::printf("  %-52s %7.2f GB/s  %5.2f x raw TCP%s\n", what.c_str(), gbps, gbps / baseline,
              note.c_str());
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
  if (role == "raw-receiver") return raw_receiver(size, std::stoi(arg(a, "--transfers", "1")));
  if (role == "receiver") return plane_receiver(a);

  const int repeat = std::stoi(arg(a, "--repeat", "5"));
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
      "(median of %d transfers after one warm-up; GB = 10^9 bytes)\n",
      size / double(1ull << 30), repeat);
  const double raw = median(raw_tcp(self, object.bytes(), repeat));
  row("raw TCP, one stream (baseline)", raw, raw);
  std::optional<double> ucx_raw;
#ifdef ATOLL_WITH_UCX
  if (!a.contains("--no-perftest")) {
    ucx_raw = perftest(size, repeat, arg(a, "--ucx-tls", "tcp"));
    if (ucx_raw)
      row("ucx_perftest tag_bw, UCX_TLS=" + arg(a, "--ucx-tls", "tcp") + " (baseline)", *ucx_raw,
          raw);
    else
      std::printf("  ucx_perftest: not run (install ucx-utils)\n");
  }
#endif
  for (const auto& backend : backends) {
    Args b = a;
    b["--backend"] = backend;
    std::vector<std::size_t> stream_counts{1};
    if (streams != 1) stream_counts.push_back(streams);
    for (std::size_t s : stream_counts) {
      const double gbps = median(data_plane(self, b, object, repeat, s));
      std::string what = "data plane " + backend +
                         (backend == "ucx" ? " (UCX_TLS=" + arg(a, "--ucx-tls", "tcp") + ")" : "") +
                         ", " + std::to_string(s) + (s == 1 ? " stream" : " streams");
      std::string note;
      if (backend == "ucx" && ucx_raw) {
        char buf[64];
        std::snprintf(buf, sizeof buf, ", %.2f x ucx_perftest", gbps / *ucx_raw);
        note = buf;
      }
      row(what, gbps, raw, note);
    }
  }
  return 0;
}
