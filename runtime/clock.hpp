// Time behind an interface, so the scheduler's deadlines can be driven by simulated time in tests.
#pragma once

#include <atomic>
#include <chrono>
#include <cstdint>

namespace atl::runtime {

class Clock {
 public:
  using time_point = std::chrono::steady_clock::time_point;
  virtual ~Clock() = default;
  virtual time_point now() const noexcept = 0;
};

class SteadyClock final : public Clock {
 public:
  time_point now() const noexcept override { return std::chrono::steady_clock::now(); }
};

// A clock that moves only when told to.
class ManualClock final : public Clock {
 public:
  time_point now() const noexcept override {
    return time_point(std::chrono::nanoseconds(now_ns_.load()));
  }
  void advance(std::chrono::nanoseconds d) noexcept { now_ns_.fetch_add(d.count()); }

 private:
  std::atomic<std::int64_t> now_ns_{0};
};

}  // namespace atl::runtime
