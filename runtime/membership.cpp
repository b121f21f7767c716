#include "runtime/membership.hpp"

#include <algorithm>
#include <tuple>

namespace atl::runtime {

std::uint64_t Membership::add(NodeInfo info) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_id_++;
  Entry e{std::move(info), FailureDetector(detector_), false};
  e.detector.heartbeat(clock_.now());
  nodes_.emplace(id, std::move(e));
  return id;
}

bool Membership::heartbeat(std::uint64_t id) {
  std::lock_guard lock(mu_);
  auto it = nodes_.find(id);
  if (it == nodes_.end() || it->second.dead) return false;
  // A heartbeat arriving after the detector gave up does not bring the node back.
  if (it->second.detector.liveness(clock_.now()) == Liveness::dead) {
    it->second.dead = true;
    return false;
  }
  it->second.detector.heartbeat(clock_.now());
  return true;
}

void Membership::disconnected(std::uint64_t id) {
  std::lock_guard lock(mu_);
  if (auto it = nodes_.find(id); it != nodes_.end()) it->second.dead = true;
}

Liveness Membership::liveness_locked(const Entry& e) const {
  return e.dead ? Liveness::dead : e.detector.liveness(clock_.now());
}

std::vector<std::uint64_t> Membership::sweep() {
  std::lock_guard lock(mu_);
  std::vector<std::uint64_t> died;
  std::size_t dead = 0;
  for (auto& [id, e] : nodes_) {
    if (!e.dead && e.detector.liveness(clock_.now()) == Liveness::dead) {
      e.dead = true;
      died.push_back(id);
    }
    dead += e.dead ? 1 : 0;
  }
  // Keep the most recent dead nodes for status; forget the oldest (ids grow with time).
  for (auto it = nodes_.begin(); dead > kMaxDeadNodes && it != nodes_.end();) {
    if (it->second.dead) {
      it = nodes_.erase(it);
      --dead;
    } else {
      ++it;
    }
  }
  return died;
}

std::vector<NodeView> Membership::snapshot() const {
  std::lock_guard lock(mu_);
  std::vector<NodeView> out;
  auto now = clock_.now();
  for (const auto& [id, e] : nodes_) {
    NodeView v;
    v.id = id;
    v.info = e.info;
    v.liveness = liveness_locked(e);
    v.heartbeat_age =
        std::chrono::duration_cast<std::chrono::milliseconds>(e.detector.since_last(now));
    out.push_back(std::move(v));
  }
  std::sort(out.begin(), out.end(), [](const NodeView& a, const NodeView& b) {
    return std::tie(a.info.island, a.info.name, a.id) < std::tie(b.info.island, b.info.name, b.id);
  });
  return out;
}

}  // namespace atl::runtime
