// `atoll`: start, inspect and stop a cluster from the command line.
#include <CLI/CLI.hpp>
#include <iostream>

#include "atoll/errors.hpp"
#include "runtime/cli/commands.hpp"
#include "runtime/worker_process.hpp"

namespace {

// `atoll __worker --fd N --module PATH --module-hash H --module-name NAME`, started by node agents.
int worker(int argc, char** argv) {
  int fd = -1;
  std::string path, hash, name;
  CLI::App app{"atoll worker process (started by node agents)"};
  app.add_option("--fd", fd)->required();
  app.add_option("--module", path)->required();
  app.add_option("--module-hash", hash)->required();
  app.add_option("--module-name", name)->required();
  try {
    app.parse(argc - 1, argv + 1);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }
  return atl::runtime::worker_main(fd, path, hash, name);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc > 1 && std::string(argv[1]) == "__worker") return worker(argc, argv);
  CLI::App app{"atoll: one programmable cluster from GPUs spread over the internet"};
  app.require_subcommand(1);

  atl::cli::HeadArgs head;
  atl::cli::NodeArgs node;
  bool is_head = false;
  double cpus = 0, gpus = -1;
  auto* start =
      app.add_subcommand("start", "start a head (--head) or a node agent on this machine");
  start->add_flag("--head", is_head, "start the head");
  start->add_option("--port", head.port, "head: port to listen on (0: any free port)");
  start->add_option("--bind", head.bind, "head: address to listen on");
  start->add_option("--heartbeat-ms", head.heartbeat_ms, "head: heartbeat period asked of nodes")
      ->check(CLI::Range(10, 60000));
  start->add_option("--dead-after-ms", head.dead_after_ms, "head: a node silent this long is dead")
      ->check(CLI::Range(100, 3600000));
  start->add_option("--address", node.address, "node: the head's HOST:PORT");
  start->add_option("--token", node.token,
                    "the cluster token (default: $ATOLL_TOKEN or generated)");
  start->add_option("--island", node.island, "node: the island it belongs to");
  start->add_option("--labels", node.labels, "node: extra labels, k=v,k=v");
  start->add_option("--cpus", cpus, "node: CPUs to offer (default: all)");
  start->add_option("--gpus", gpus, "node: GPUs to declare (default: detected through CUDA)");
  start->add_option("--gpu-model", node.gpu_model, "node: model of the declared GPUs, e.g. H100");
  start->add_option("--memory", node.memory, "node: memory to offer, e.g. 16G (default: all)");
  start->add_option("--name", node.name, "node: its name (default: hostname-pid)");
  start->add_option("--data-host", node.data_host,
                    "node: address its data plane listens on (default 127.0.0.1; 0.0.0.0: all)");
  start->add_option("--data-advertise", node.data_advertise,
                    "node: host others dial for its data plane (default: --data-host)");
  start->add_option("--python", node.python,
                    "node: interpreter for Python workers, with atoll installed (default: "
                    "$ATOLL_PYTHON, else python3)");
  bool foreground = false;
  int ready_fd = -1;
  start->add_flag("--foreground", foreground, "run in this terminal instead of in the background");
  start->add_option("--ready-fd", ready_fd, "(internal) pipe to report readiness on")->group("");

  std::string address, token;
  bool json = false;
  auto* status = app.add_subcommand("status", "show the cluster's nodes by island");
  status->add_option("--address", address, "the head's HOST:PORT (default: the head started here)");
  status->add_option("--token", token, "the cluster token (default: the one stored here)");
  status->add_flag("--json", json, "machine-readable output");

  app.add_subcommand("stop", "stop every atoll process started on this machine");

  atl::cli::UpArgs up;
  auto* up_cmd = app.add_subcommand("up", "start a local cluster: a head and nodes in islands");
  up_cmd->add_option("--islands", up.islands, "number of islands")->check(CLI::Range(1, 64));
  up_cmd->add_option("--nodes-per-island", up.nodes_per_island, "nodes in each island")
      ->check(CLI::Range(1, 64));
  up_cmd->add_option("--gpus-per-node", up.gpus_per_node, "GPUs each node declares");
  up_cmd->add_option("--gpu-model", up.gpu_model, "model of the declared GPUs");
  up_cmd->add_option("--cpus", up.cpus_per_node, "CPUs each node offers");
  up_cmd->add_option("--memory", up.memory_per_node,
                     "memory each node offers, e.g. 16G (30% of it holds objects; default 4G)");
  up_cmd->add_option("--port", up.port, "head port (0: any free port)");
  up_cmd->add_option("--python", up.python, "interpreter for the nodes' Python workers");
  app.add_subcommand("down", "stop the local cluster started by `atoll up`");

  try {
    app.parse(argc, argv);
  } catch (const CLI::ParseError& e) {
    return app.exit(e);
  }

  try {
    if (start->parsed()) {
      if (is_head) {
        head.token = node.token;
        head.foreground = foreground;
        head.ready_fd = ready_fd;
        if (!node.address.empty() || !node.island.empty())
          throw atl::Error(atl::ErrorCategory::invalid_argument,
                           "--head does not take --address or --island");
        if (start->count("--data-host") > 0 || start->count("--data-advertise") > 0)
          throw atl::Error(atl::ErrorCategory::invalid_argument,
                           "--head does not take --data-host or --data-advertise: its relay's "
                           "data plane listens on --bind, as its control port does");
        return atl::cli::start_head(head);
      }
      if (node.address.empty())
        throw atl::Error(atl::ErrorCategory::invalid_argument,
                         "start needs --head, or --address HOST:PORT to join a head");
      if (start->count("--cpus") > 0) node.cpus = cpus;
      if (start->count("--gpus") > 0) node.gpus = gpus;
      node.foreground = foreground;
      node.ready_fd = ready_fd;
      return atl::cli::start_node(node);
    }
    if (status->parsed()) return atl::cli::status(address, token, json);
    if (app.got_subcommand("stop") || app.got_subcommand("down")) return atl::cli::stop();
    if (up_cmd->parsed()) return atl::cli::up(up);
  } catch (const atl::Error& e) {
    std::cerr << "atoll: " << e.what() << "\n";
    return e.category() == atl::ErrorCategory::invalid_argument ? 2 : 1;
  } catch (const std::exception& e) {
    std::cerr << "atoll: " << e.what() << "\n";
    return 1;
  }
  return 0;
}
