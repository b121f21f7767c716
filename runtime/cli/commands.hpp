// The `atoll` subcommands. Each returns the process exit code and prints what a person needs:
// the join command after starting a head, the node's id after joining, a readable or JSON status.
#pragma once

#include <optional>
#include <string>

namespace atl::cli {

struct HeadArgs {
  std::string bind = "0.0.0.0";
  int port = 7100;  // 0: any free port
  std::string token;
  bool foreground = false;
  int ready_fd = -1;
  int heartbeat_ms = 1000;
  int dead_after_ms = 30000;
};

struct NodeArgs {
  std::string address;
  std::string token;
  std::string island;
  std::string labels;  // k=v,k=v
  std::optional<double> cpus;
  std::optional<double> gpus;
  std::string gpu_model;
  std::string memory;  // bytes, or with K/M/G/T suffix
  std::string name;
  // Its data plane: where it listens, and the host others dial (empty: data_host).
  std::string data_host = "127.0.0.1";
  std::string data_advertise;
  // The interpreter for Python workers (with the atoll package); empty: $ATOLL_PYTHON, else
  // python3 from PATH.
  std::string python;
  bool foreground = false;
  int ready_fd = -1;
};

struct UpArgs {
  int islands = 2;
  int nodes_per_island = 2;
  double gpus_per_node = 0;
  std::string gpu_model;
  double cpus_per_node = 1;
  std::string memory_per_node = "4G";
  int port = 0;
  std::string python;  // as NodeArgs::python
};

int start_head(const HeadArgs& args);
int start_node(const NodeArgs& args);
int status(const std::string& address, const std::string& token, bool json);
int stop();
int up(const UpArgs& args);

// Parses "HOST:PORT"; raises atl::Error(invalid_argument) with what is wrong.
std::pair<std::string, std::uint16_t> parse_address(const std::string& address);
// Parses "123", "512M", "16G", "1.5T" (powers of 1024); raises atl::Error(invalid_argument).
std::uint64_t parse_size(const std::string& text);

}  // namespace atl::cli
