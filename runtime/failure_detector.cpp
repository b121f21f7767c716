#include "runtime/failure_detector.hpp"

#include <algorithm>
#include <cmath>

namespace atl::runtime {

void FailureDetector::heartbeat(Clock::time_point now) {
  if (started_) {
    double ms = std::chrono::duration<double, std::milli>(now - last_).count();
    intervals_ms_.push_back(ms);
    sum_ += ms;
    sum_squares_ += ms * ms;
    if (intervals_ms_.size() > options_.window) {
      double old = intervals_ms_.front();
      intervals_ms_.pop_front();
      sum_ -= old;
      sum_squares_ -= old * old;
    }
  }
  started_ = true;
  last_ = now;
}

double FailureDetector::phi(Clock::time_point now) const {
  if (!started_) return 0;
  double elapsed = std::chrono::duration<double, std::milli>(now - last_).count();
  double mean, variance;
  if (intervals_ms_.empty()) {
    mean = static_cast<double>(options_.first_interval.count());
    variance = mean * mean / 16;  // a guess: sd = mean / 4
  } else {
    auto n = static_cast<double>(intervals_ms_.size());
    mean = sum_ / n;
    variance = std::max(0.0, sum_squares_ / n - mean * mean);
  }
  double min_sd = static_cast<double>(options_.min_std_dev.count());
  double sd = std::max(std::sqrt(variance), min_sd);
  mean += static_cast<double>(options_.acceptable_pause.count());
  // P(interval > elapsed) with the logistic approximation of the normal CDF used by Akka.
  double y = (elapsed - mean) / sd;
  double e = std::exp(-y * (1.5976 + 0.070566 * y * y));
  double p_later = elapsed > mean ? e / (1.0 + e) : 1.0 - 1.0 / (1.0 + e);
  return -std::log10(std::max(p_later, 1e-300));
}

Liveness FailureDetector::liveness(Clock::time_point now) const {
  if (!started_) return Liveness::alive;
  if (now - last_ >= options_.dead_after) return Liveness::dead;
  double p = phi(now);
  if (p >= options_.dead_phi) return Liveness::dead;
  if (p >= options_.suspect_phi) return Liveness::suspect;
  return Liveness::alive;
}

std::chrono::nanoseconds FailureDetector::since_last(Clock::time_point now) const {
  return started_ ? now - last_ : std::chrono::nanoseconds(0);
}

const char* to_string(Liveness liveness) noexcept {
  switch (liveness) {
    case Liveness::alive:
      return "alive";
    case Liveness::suspect:
      return "suspect";
    case Liveness::dead:
      return "dead";
  }
  return "unknown";
}

}  // namespace atl::runtime
