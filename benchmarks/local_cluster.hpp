// A local cluster of real processes for benchmarks: a head and node agents started with
// `atoll up` in a private state directory, removed with `atoll down` when this goes. This process
// is a driver of it (and may connect more), so figures include every hop: driver -> head ->
// node -> worker.
#pragma once

#include <unistd.h>

#include <chrono>
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <optional>
#include <stdexcept>
#include <string>

#include "atoll/atoll.hpp"
#include "tests/cluster/job_module.hpp"

namespace bench {

struct LocalClusterShape {
  int islands = 1;
  int nodes_per_island = 1;
  int cpus = 2;
  std::string memory = "4G";  // per node; 30% of it holds objects
};

class LocalCluster {
 public:
  explicit LocalCluster(LocalClusterShape shape = {}) {
    namespace fs = std::filesystem;
    dir_ = fs::temp_directory_path() / ("atoll-bench-cluster-" + std::to_string(::getpid()));
    fs::remove_all(dir_);
    fs::create_directories(dir_);
    std::string up = "ATOLL_STATE_DIR='" + dir_.string() + "' " ATOLL_CLI + std::string(" up") +
                     " --islands " + std::to_string(shape.islands) + " --nodes-per-island " +
                     std::to_string(shape.nodes_per_island) + " --cpus " +
                     std::to_string(shape.cpus) + " --memory " + shape.memory + " > /dev/null";
    if (std::system(up.c_str()) != 0) throw std::runtime_error("atoll up failed");
    std::ifstream(dir_ / "head.addr") >> address_;
    std::ifstream(dir_ / "token") >> token_;
    runtime_.emplace(connect());
    runtime_->task(job::add).remote(0, 0).get(std::chrono::seconds(30));  // warm a worker
  }
  ~LocalCluster() {
    runtime_.reset();
    std::string down =
        "ATOLL_STATE_DIR='" + dir_.string() + "' " ATOLL_CLI + std::string(" down > /dev/null");
    [[maybe_unused]] int rc = std::system(down.c_str());
    std::filesystem::remove_all(dir_);
  }
  LocalCluster(const LocalCluster&) = delete;
  LocalCluster& operator=(const LocalCluster&) = delete;

  atl::Runtime& runtime() { return *runtime_; }
  // Another driver of the same cluster.
  atl::Runtime connect() {
    return atl::init({.address = address_,
                      .token = token_,
                      .modules = {test_job},
                      .job_module = {.library = ATOLL_TEST_JOB, .name = "test_job"}});
  }

 private:
  std::filesystem::path dir_;
  std::string address_, token_;
  std::optional<atl::Runtime> runtime_;
};

}  // namespace bench
