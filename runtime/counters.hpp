// Counters shared by the runtime's components, read by RuntimeRef::stats.
#pragma once

#include <atomic>
#include <cstdint>

namespace atl::runtime {

struct Counters {
  std::atomic<std::uint64_t> tasks_submitted{0};
  std::atomic<std::uint64_t> tasks_finished{0};
  std::atomic<std::uint64_t> tasks_waiting_for_dependencies{0};
  std::atomic<std::uint64_t> actors_alive{0};
};

}  // namespace atl::runtime
