#include "runtime/cli/commands.hpp"

#include <arpa/inet.h>
#include <ifaddrs.h>
#include <netinet/in.h>
#include <signal.h>
#include <unistd.h>

#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <thread>

#include "atoll/errors.hpp"
#include "runtime/cli/processes.hpp"
#include "runtime/cluster_client.hpp"
#include "runtime/cluster_messages.hpp"
#include "runtime/gpu_probe.hpp"
#include "runtime/head_server.hpp"
#include "transport/auth.hpp"

namespace atl::cli {

namespace fs = std::filesystem;

namespace {

[[noreturn]] void invalid(const std::string& message) {
  throw Error(ErrorCategory::invalid_argument, message);
}

// Blocks SIGINT/SIGTERM and calls `stop` from a helper thread when one arrives. Destroying the
// guard wakes and joins that thread, so it never outlives what `stop` refers to.
class StopOnSignal {
 public:
  explicit StopOnSignal(std::function<void()> stop) {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    thread_ = std::thread([set, this, stop = std::move(stop)] {
      int sig = 0;
      sigwait(&set, &sig);
      if (!done_.load()) stop();
    });
  }
  ~StopOnSignal() {
    done_.store(true);
    pthread_kill(thread_.native_handle(), SIGTERM);  // blocked everywhere: sigwait takes it
    thread_.join();
  }

 private:
  std::atomic<bool> done_{false};
  std::thread thread_;
};

std::string first_external_ipv4() {
  ifaddrs* list = nullptr;
  std::string found = "127.0.0.1";
  if (::getifaddrs(&list) != 0) return found;
  for (ifaddrs* i = list; i != nullptr; i = i->ifa_next) {
    if (i->ifa_addr == nullptr || i->ifa_addr->sa_family != AF_INET) continue;
    char text[INET_ADDRSTRLEN];
    auto* sin = reinterpret_cast<sockaddr_in*>(i->ifa_addr);
    if (::inet_ntop(AF_INET, &sin->sin_addr, text, sizeof text) == nullptr) continue;
    if (std::string(text).rfind("127.", 0) != 0) {
      found = text;
      break;
    }
  }
  ::freeifaddrs(list);
  return found;
}

std::string hostname() {
  char name[256] = {};
  ::gethostname(name, sizeof name - 1);
  return name;
}

std::string safe_name(const std::string& name) {
  std::string out;
  for (char c : name)
    out +=
        (std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '.' || c == '_') ? c : '_';
  return out;
}

std::string cluster_token(const std::string& given) {
  if (!given.empty()) {
    transport::validate_token(given);
    return given;
  }
  if (const char* env = std::getenv("ATOLL_TOKEN"); env != nullptr && *env != '\0') {
    transport::validate_token(env);
    return env;
  }
  return transport::load_or_create_token(state_dir() / "token");
}

void store_token(const std::string& token) {
  fs::path path = state_dir() / "token";
  std::error_code ec;
  if (fs::exists(path, ec) && transport::load_or_create_token(path) == token) return;
  transport::store_token(path, token);
}

std::string format_amount(double v) {
  char text[32];
  std::snprintf(text, sizeof text, v == std::floor(v) ? "%.0f" : "%.2f", v);
  return text;
}

std::string format_bytes(double bytes) {
  const char* units[] = {"B", "KiB", "MiB", "GiB", "TiB"};
  int u = 0;
  while (bytes >= 1024 && u < 4) {
    bytes /= 1024;
    ++u;
  }
  char text[32];
  std::snprintf(text, sizeof text, u == 0 ? "%.0f %s" : "%.1f %s", bytes, units[u]);
  return text;
}

int run_head_foreground(const HeadArgs& args, const std::string& token) {
  int ready_fd = args.ready_fd;
  try {
    runtime::HeadServer head(runtime::HeadOptions{
        .bind = args.bind,
        .port = static_cast<std::uint16_t>(args.port),
        .token = token,
        .detector = {.first_interval = std::chrono::milliseconds(args.heartbeat_ms),
                     .dead_after = std::chrono::milliseconds(args.dead_after_ms)},
        .heartbeat_interval = std::chrono::milliseconds(args.heartbeat_ms)});
    StopOnSignal on_signal([&] { head.stop(); });
    report_ready(std::exchange(ready_fd, -1), std::to_string(head.port()));
    std::cerr << "atoll head listening on " << args.bind << ":" << head.port() << "\n";
    head.run();
    return 0;
  } catch (const std::exception& e) {
    report_error(std::exchange(ready_fd, -1), e.what());
    std::cerr << "atoll: " << e.what() << "\n";
    return 1;
  }
}

int run_node_foreground(const NodeArgs& args, runtime::NodeAgentOptions options) {
  int ready_fd = args.ready_fd;  // reported once: later registrations (after a reconnect) are quiet
  try {
    runtime::NodeAgentProcess agent(std::move(options));
    StopOnSignal on_signal([&] { agent.stop(); });
    std::string error = agent.run([&](std::uint64_t id) {
      report_ready(std::exchange(ready_fd, -1), std::to_string(id));
      std::cerr << "atoll node registered as node " << id << "\n";
    });
    if (error.empty()) return 0;
    report_error(std::exchange(ready_fd, -1), error);
    std::cerr << "atoll: " << error << "\n";
    return 1;
  } catch (const std::exception& e) {
    report_error(std::exchange(ready_fd, -1), e.what());
    std::cerr << "atoll: " << e.what() << "\n";
    return 1;
  }
}

// Runs `python -c` to check that it imports atoll's extension; returns its version ("3.11"), or ""
// when it does not (or cannot run).
std::string python_version(const std::string& python) {
  std::string quoted = "'";
  for (char c : python) quoted += c == '\'' ? std::string("'\\''") : std::string(1, c);
  quoted += "'";
  std::string command = quoted +
                        " -c 'import sys, atoll._core; print(\"%d.%d\" % sys.version_info[:2])'"
                        " 2>/dev/null";
  FILE* out = ::popen(command.c_str(), "r");
  if (out == nullptr) return {};
  char line[64] = {};
  bool read = std::fgets(line, sizeof line, out) != nullptr;
  int status = ::pclose(out);
  if (!read || status != 0) return {};
  std::string version(line);
  while (!version.empty() && (version.back() == '\n' || version.back() == '\r')) version.pop_back();
  return version;
}

// The interpreter Python workers run on, as an absolute path, and its version: `requested`, else
// $ATOLL_PYTHON, else python3, looked up on PATH when not a path. Empty when none is found that
// imports atoll and none was requested (the node then takes no Python work, and says so); a
// requested one that is missing or lacks atoll is an error.
std::pair<std::string, std::string> find_python(const std::string& requested) {
  std::string name = requested;
  if (name.empty())
    if (const char* env = std::getenv("ATOLL_PYTHON")) name = env;
  bool explicit_choice = !name.empty();
  if (name.empty()) name = "python3";
  auto runnable = [](const fs::path& p) { return ::access(p.c_str(), X_OK) == 0; };
  std::string found;
  if (name.find('/') != std::string::npos) {
    if (runnable(name)) found = fs::absolute(name).string();
  } else if (const char* path = std::getenv("PATH")) {
    std::string dirs = path;
    for (std::size_t start = 0; start <= dirs.size() && found.empty();) {
      std::size_t colon = dirs.find(':', start);
      std::string dir =
          dirs.substr(start, colon == std::string::npos ? std::string::npos : colon - start);
      if (!dir.empty() && runnable(fs::path(dir) / name))
        found = fs::absolute(fs::path(dir) / name).string();
      if (colon == std::string::npos) break;
      start = colon + 1;
    }
  }
  if (found.empty()) {
    if (explicit_choice) invalid("--python '" + name + "' is not an executable file");
    std::cerr << "atoll: no python3 on PATH: this node takes no Python work (--python)\n";
    return {};
  }
  std::string version = python_version(found);
  if (version.empty()) {
    if (explicit_choice)
      invalid("--python '" + found + "' cannot import atoll (pip install it there)");
    std::cerr << "atoll: " << found
              << " cannot import atoll: this node takes no Python work (--python)\n";
    return {};
  }
  return {found, version};
}

// The same limits the head's decoder enforces, checked here so the operator gets a clear error.
void check_length(const std::string& what, const std::string& value, std::size_t max) {
  if (value.size() > max)
    invalid(what + " is longer than " + std::to_string(max) + " characters: '" + value + "'");
}

}  // namespace

std::pair<std::string, std::uint16_t> parse_address(const std::string& address) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == address.size())
    invalid("address '" + address + "' must be HOST:PORT");
  std::string host = address.substr(0, colon);
  std::string port_text = address.substr(colon + 1);
  char* end = nullptr;
  long port = std::strtol(port_text.c_str(), &end, 10);
  if (*end != '\0' || port < 1 || port > 65535)
    invalid("port '" + port_text + "' in '" + address + "' is not a number from 1 to 65535");
  return {host, static_cast<std::uint16_t>(port)};
}

std::uint64_t parse_size(const std::string& text) {
  char* end = nullptr;
  double value = std::strtod(text.c_str(), &end);
  std::string suffix(end);
  double scale = 1;
  if (suffix == "K" || suffix == "KiB")
    scale = 1024.0;
  else if (suffix == "M" || suffix == "MiB")
    scale = 1024.0 * 1024;
  else if (suffix == "G" || suffix == "GiB")
    scale = 1024.0 * 1024 * 1024;
  else if (suffix == "T" || suffix == "TiB")
    scale = 1024.0 * 1024 * 1024 * 1024;
  else if (!suffix.empty() || end == text.c_str())
    invalid("size '" + text + "' must be a number with an optional K, M, G or T suffix");
  if (!std::isfinite(value) || value < 0) invalid("size '" + text + "' must be positive");
  return static_cast<std::uint64_t>(value * scale);
}

int start_head(const HeadArgs& args) {
  if (args.port < 0 || args.port > 65535) invalid("--port must be from 0 to 65535");
  if (args.dead_after_ms < 3 * args.heartbeat_ms)
    invalid("--dead-after-ms must be at least three heartbeat periods (--heartbeat-ms)");
  std::string token = cluster_token(args.token);
  store_token(token);
  if (args.foreground) return run_head_foreground(args, token);

  fs::path dir = state_dir();
  fs::create_directories(dir);
  if (auto pid = live_pid(dir / "head.pid"))
    throw Error(ErrorCategory::failed, "a head is already running here (pid " +
                                           std::to_string(*pid) + "); run `atoll stop` first");
  Spawned child =
      spawn_and_wait(self_executable(),
                     {"start", "--head", "--foreground", "--port", std::to_string(args.port),
                      "--bind", args.bind, "--heartbeat-ms", std::to_string(args.heartbeat_ms),
                      "--dead-after-ms", std::to_string(args.dead_after_ms)},
                     {"ATOLL_TOKEN=" + token}, dir / "head.log", std::chrono::seconds(15));
  write_pid_file(dir / "head.pid", child.pid);
  std::string host = args.bind == "0.0.0.0" ? first_external_ipv4() : args.bind;
  std::string address = host + ":" + child.ready_message;
  std::ofstream(dir / "head.addr") << address << "\n";
  std::cout << "atoll head started on " << address << " (pid " << child.pid << ")\n"
            << "The cluster token is stored in " << (dir / "token").string() << " (mode 0600).\n"
            << "To join a node to this cluster, run on it:\n\n"
            << "  atoll start --address " << address << " --token " << token
            << " --island <island-name>\n\n"
            << "Then: atoll status\n";
  return 0;
}

int start_node(const NodeArgs& args) {
  auto [host, port] = parse_address(args.address);
  if (args.island.empty()) invalid("--island is required: the island this node belongs to");
  check_length("--island", args.island, 256);
  check_length("--name", args.name, 256);
  check_length("--gpu-model", args.gpu_model, 64);
  // Checked before anything starts: a bad host would otherwise fail only in the background agent.
  if (auto why = runtime::data_host_problem(args.data_host); !why.empty())
    invalid("--data-host '" + args.data_host + "' " + why);
  if (!args.data_advertise.empty())
    if (auto why = runtime::data_host_problem(args.data_advertise); !why.empty())
      invalid("--data-advertise '" + args.data_advertise + "' " + why);
  std::string token = cluster_token(args.token);

  runtime::NodeInfo info;
  info.island = args.island;
  info.hostname = hostname();
  info.pid = static_cast<std::uint32_t>(::getpid());
  double cpus = args.cpus.value_or(std::max(1u, std::thread::hardware_concurrency()));
  if (cpus <= 0) invalid("--cpus must be positive");
  info.resources.emplace_back("CPU", cpus);
  if (args.gpus) {
    if (*args.gpus < 0) invalid("--gpus must not be negative");
    if (*args.gpus > 0 && args.gpu_model.empty()) invalid("--gpus needs --gpu-model");
    if (*args.gpus > 0) {
      info.resources.emplace_back("GPU", *args.gpus);
      info.gpu_model = args.gpu_model;
      info.gpus_declared = true;
    }
  } else {
    runtime::GpuInventory gpus = runtime::probe_gpus();
    if (gpus.count > 0) {
      info.resources.emplace_back("GPU", gpus.count);
      info.gpu_model = gpus.model;
    }
  }
  long pages = ::sysconf(_SC_PHYS_PAGES), page = ::sysconf(_SC_PAGESIZE);
  double memory = args.memory.empty() ? static_cast<double>(pages) * static_cast<double>(page)
                                      : static_cast<double>(parse_size(args.memory));
  info.resources.emplace_back("memory", memory);
  info.labels["island"] = args.island;
  if (!info.gpu_model.empty()) info.labels["gpu_model"] = info.gpu_model;
  std::string labels = args.labels;
  for (std::size_t start = 0; start < labels.size();) {
    std::size_t comma = labels.find(',', start);
    std::string pair =
        labels.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
    auto eq = pair.find('=');
    if (eq == std::string::npos || eq == 0) invalid("label '" + pair + "' must be key=value");
    check_length("label key", pair.substr(0, eq), 64);
    check_length("label value", pair.substr(eq + 1), 256);
    info.labels[pair.substr(0, eq)] = pair.substr(eq + 1);
    if (info.labels.size() > 60) invalid("too many labels (at most 60)");
    if (comma == std::string::npos) break;
    start = comma + 1;
  }
  std::string name = args.name.empty() ? hostname() + "-" + std::to_string(::getpid()) : args.name;
  auto [python, python_version] = find_python(args.python);
  if (!python.empty()) info.labels[runtime::kPythonLabel] = python_version;
  runtime::NodeAgentOptions options{.host = host,
                                    .port = port,
                                    .token = token,
                                    .name = name,
                                    .info = info,
                                    .module_dir = state_dir() / "modules",
                                    .worker_executable = self_executable(),
                                    .python_executable = python,
                                    .data_host = args.data_host,
                                    .data_advertise_host = args.data_advertise};
  if (args.foreground) return run_node_foreground(args, std::move(options));

  fs::path dir = state_dir();
  fs::create_directories(dir);
  std::string file = "node-" + safe_name(name);
  if (auto pid = live_pid(dir / (file + ".pid")))
    throw Error(ErrorCategory::failed,
                "a node named '" + name + "' already runs here (pid " + std::to_string(*pid) + ")");
  std::vector<std::string> child_args{
      "start",       "--foreground",
      "--address",   args.address,
      "--island",    args.island,
      "--name",      name,
      "--cpus",      format_amount(cpus),
      "--memory",    std::to_string(static_cast<std::uint64_t>(memory)),
      "--data-host", args.data_host};
  if (args.gpus) {
    child_args.insert(child_args.end(), {"--gpus", format_amount(*args.gpus)});
    if (!args.gpu_model.empty())
      child_args.insert(child_args.end(), {"--gpu-model", args.gpu_model});
  }
  if (!args.labels.empty()) child_args.insert(child_args.end(), {"--labels", args.labels});
  if (!args.data_advertise.empty())
    child_args.insert(child_args.end(), {"--data-advertise", args.data_advertise});
  if (!python.empty()) child_args.insert(child_args.end(), {"--python", python});
  Spawned child = spawn_and_wait(self_executable(), child_args, {"ATOLL_TOKEN=" + token},
                                 dir / (file + ".log"), std::chrono::seconds(15));
  write_pid_file(dir / (file + ".pid"), child.pid);
  std::cout << "node '" << name << "' joined island '" << args.island << "' as node "
            << child.ready_message << " (pid " << child.pid << ")\n";
  return 0;
}

int status(const std::string& address_arg, const std::string& token_arg, bool json) {
  std::string address = address_arg;
  if (address.empty()) {
    std::ifstream in(state_dir() / "head.addr");
    std::getline(in, address);
    if (address.empty())
      throw Error(ErrorCategory::failed,
                  "no head was started here: pass --address HOST:PORT --token TOKEN");
  }
  auto [host, port] = parse_address(address);
  auto nodes = runtime::fetch_status(host, port, cluster_token(token_arg));
  if (json) {
    nlohmann::json out = {{"head", address}, {"nodes", nlohmann::json::array()}};
    for (const auto& n : nodes) {
      nlohmann::json resources = nlohmann::json::object();
      for (const auto& [k, v] : n.info.resources) resources[k] = v;
      // Live nodes only: the head does not count what a dead node had in use.
      nlohmann::json used = nlohmann::json::object(), available = nlohmann::json::object();
      for (const auto& [k, v] : n.available) {
        available[k] = v;
        used[k] = std::max(0.0, resources.value(k, 0.0) - v);
      }
      out["nodes"].push_back({{"id", n.id},
                              {"name", n.info.name},
                              {"island", n.info.island},
                              {"state", runtime::to_string(n.liveness)},
                              {"heartbeat_age_ms", n.heartbeat_age.count()},
                              {"resources", resources},
                              {"used", used},
                              {"available", available},
                              {"labels", n.info.labels},
                              {"gpu_model", n.info.gpu_model},
                              {"gpus_declared", n.info.gpus_declared},
                              {"address", n.info.address},
                              {"hostname", n.info.hostname},
                              {"pid", n.info.pid}});
    }
    std::cout << out.dump(2) << "\n";
    return 0;
  }
  std::size_t counts[3] = {0, 0, 0};
  std::map<std::string, std::vector<const runtime::NodeView*>> islands;
  for (const auto& n : nodes) {
    ++counts[static_cast<int>(n.liveness)];
    islands[n.info.island].push_back(&n);
  }
  std::cout << "cluster at " << address << ": " << nodes.size() << " nodes (" << counts[0]
            << " alive, " << counts[1] << " suspect, " << counts[2] << " dead) in "
            << islands.size() << " islands\n";
  for (const auto& [island, members] : islands) {
    std::cout << "\nisland " << island << "\n";
    // Resources read used/total; a dead node's use is unknown ("-/total").
    std::printf("  %-24s %-8s %-10s %-8s %-30s %-21s %s\n", "NODE", "STATE", "HEARTBEAT", "CPU",
                "GPU", "MEMORY", "LABELS");
    for (const auto* n : members) {
      auto used_of = [&](const std::string& name, double total, bool bytes) {
        for (const auto& [k, v] : n->available)
          if (k == name) {
            double used = std::max(0.0, total - v);
            return bytes ? format_bytes(used) : format_amount(used);
          }
        return std::string("-");
      };
      double cpu = 0, gpu = 0, mem = 0;
      for (const auto& [k, v] : n->info.resources) {
        if (k == "CPU") cpu = v;
        if (k == "GPU") gpu = v;
        if (k == "memory") mem = v;
      }
      std::string cpus = used_of("CPU", cpu, false) + "/" + format_amount(cpu);
      std::string gpus = gpu > 0
                             ? used_of("GPU", gpu, false) + "/" + format_amount(gpu) + " " +
                                   n->info.gpu_model + (n->info.gpus_declared ? " (declared)" : "")
                             : "-";
      std::string memory =
          mem > 0 ? used_of("memory", mem, true) + "/" + format_bytes(mem) : std::string("-");
      std::string labels;
      for (const auto& [k, v] : n->info.labels)
        if (k != "island" && k != "gpu_model") labels += (labels.empty() ? "" : ",") + k + "=" + v;
      char age[32];
      std::snprintf(age, sizeof age, "%.1f s",
                    static_cast<double>(n->heartbeat_age.count()) / 1000);
      std::printf("  %-24s %-8s %-10s %-8s %-30s %-21s %s\n", n->info.name.c_str(),
                  runtime::to_string(n->liveness), age, cpus.c_str(), gpus.c_str(), memory.c_str(),
                  labels.empty() ? "-" : labels.c_str());
    }
  }
  return 0;
}

int stop() {
  auto stopped = stop_all(state_dir(), std::chrono::seconds(10));
  if (stopped.empty()) std::cout << "nothing was running\n";
  for (const auto& s : stopped)
    std::cout << "stopped " << s.name << " (pid " << s.pid << (s.forced ? ", killed" : "") << ")\n";
  return 0;
}

int up(const UpArgs& args) {
  if (args.islands < 1 || args.nodes_per_island < 1)
    invalid("--islands and --nodes-per-island must be at least 1");
  if (args.gpus_per_node > 0 && args.gpu_model.empty())
    invalid("--gpus-per-node needs --gpu-model");
  parse_size(args.memory_per_node);  // refused before anything starts
  HeadArgs head{.bind = "127.0.0.1", .port = args.port};
  if (start_head(head) != 0) return 1;
  std::string address;
  std::ifstream(state_dir() / "head.addr") >> address;
  for (int i = 0; i < args.islands; ++i) {
    for (int j = 0; j < args.nodes_per_island; ++j) {
      NodeArgs node{.address = address,
                    .island = "island-" + std::to_string(i),
                    .cpus = args.cpus_per_node,
                    .gpus = args.gpus_per_node,
                    .gpu_model = args.gpu_model,
                    .memory = args.memory_per_node,
                    .name = "island-" + std::to_string(i) + "-node-" + std::to_string(j),
                    .python = args.python};
      if (start_node(node) != 0) return 1;
    }
  }
  std::cout << "local cluster up: " << args.islands * args.nodes_per_island << " nodes in "
            << args.islands << " islands; `atoll status` to look, `atoll down` to remove it\n";
  return 0;
}

}  // namespace atl::cli
