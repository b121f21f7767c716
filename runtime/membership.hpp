// The head's table of nodes: who registered, with what, and whether each is alive, suspect or
// dead by its heartbeats (phi-accrual). A node that dies stays dead; if it comes back it registers
// again and gets a new id.
//
// Thread-safety: all methods are thread-safe.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>
#include <utility>
#include <vector>

#include "runtime/clock.hpp"
#include "runtime/failure_detector.hpp"

namespace atl::runtime {

struct NodeInfo {
  std::string name;
  std::string island;
  std::vector<std::pair<std::string, double>> resources;
  std::map<std::string, std::string> labels;
  std::string gpu_model;
  bool gpus_declared = false;
  std::string hostname;
  std::string address;
  std::uint32_t pid = 0;
  std::string data_address;  // its data plane, for objects (RegisterNode only)
  std::string data_name;     // the name that data plane gives in handshakes
};

struct NodeView {
  std::uint64_t id = 0;
  NodeInfo info;
  Liveness liveness = Liveness::alive;
  std::chrono::milliseconds heartbeat_age{0};
  // What is not in use now (the head's scheduler fills it in for live nodes; empty otherwise).
  std::vector<std::pair<std::string, double>> available;
};

class Membership {
 public:
  static constexpr std::size_t kMaxDeadNodes = 1000;

  Membership(const Clock& clock, FailureDetectorOptions detector)
      : clock_(clock), detector_(detector) {}

  // Registers a node (counting as its first heartbeat) and returns its new id.
  std::uint64_t add(NodeInfo info);
  // False when the id is unknown or the node is already dead.
  bool heartbeat(std::uint64_t id);
  // Its connection closed: dead at once.
  void disconnected(std::uint64_t id);
  // Marks nodes dead whose detector says so, forgets the oldest dead beyond kMaxDeadNodes, and
  // returns the ids that just died.
  std::vector<std::uint64_t> sweep();
  // All nodes, by island, then name, then id.
  std::vector<NodeView> snapshot() const;

 private:
  struct Entry {
    NodeInfo info;
    FailureDetector detector;
    bool dead = false;
  };
  Liveness liveness_locked(const Entry& e) const;

  const Clock& clock_;
  const FailureDetectorOptions detector_;
  mutable std::mutex mu_;
  std::uint64_t next_id_ = 1;
  std::map<std::uint64_t, Entry> nodes_;
};

}  // namespace atl::runtime
