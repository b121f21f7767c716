// Phi-accrual failure detection (Hayashibara et al.; as in Akka and Cassandra).
//
// Each heartbeat's arrival time feeds a window of inter-arrival intervals. Suspicion is
// phi = -log10(P(a heartbeat arrives later than now)), with the intervals modelled as a normal
// distribution whose standard deviation never drops below a floor (so a perfectly regular sender
// is not declared dead after one late beat) and whose mean includes an acceptable pause (so WAN
// jitter is tolerated). A node is `suspect` above one threshold and `dead` above another — or
// after a hard timeout without heartbeats, whichever comes first.
//
// Thread-safety: not thread-safe; the membership table guards it.
#pragma once

#include <chrono>
#include <cstddef>
#include <deque>

#include "runtime/clock.hpp"

namespace atl::runtime {

struct FailureDetectorOptions {
  double suspect_phi = 5.0;
  double dead_phi = 12.0;  // Cassandra's choice for noisy networks; Akka uses 8
  std::chrono::milliseconds min_std_dev{100};
  std::chrono::milliseconds acceptable_pause{3000};
  std::chrono::milliseconds first_interval{1000};  // assumed before any interval is known
  std::chrono::milliseconds dead_after{30000};     // no heartbeat for this long: dead regardless
  std::size_t window = 1000;
};

enum class Liveness { alive, suspect, dead };

class FailureDetector {
 public:
  explicit FailureDetector(FailureDetectorOptions options = {}) : options_(options) {}

  void heartbeat(Clock::time_point now);
  double phi(Clock::time_point now) const;
  Liveness liveness(Clock::time_point now) const;
  std::chrono::nanoseconds since_last(Clock::time_point now) const;

 private:
  FailureDetectorOptions options_;
  std::deque<double> intervals_ms_;
  double sum_ = 0, sum_squares_ = 0;
  Clock::time_point last_{};
  bool started_ = false;
};

const char* to_string(Liveness liveness) noexcept;

}  // namespace atl::runtime
