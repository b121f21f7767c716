// The phi-accrual detector in simulated time: regular heartbeats stay alive, jitter within the
// acceptable pause is tolerated, silence turns a node suspect and then dead.
#include "runtime/failure_detector.hpp"

#include <gtest/gtest.h>

#include <random>

namespace {

using namespace std::chrono_literals;
using atl::runtime::FailureDetector;
using atl::runtime::Liveness;
using atl::runtime::ManualClock;

TEST(FailureDetectorTest, regular_heartbeats_stay_alive_and_phi_grows_with_silence) {
  ManualClock clock;
  FailureDetector fd;
  for (int i = 0; i < 20; ++i) {
    fd.heartbeat(clock.now());
    clock.advance(1s);
  }
  EXPECT_EQ(fd.liveness(clock.now()), Liveness::alive);
  double before = fd.phi(clock.now());
  clock.advance(3s);
  double later = fd.phi(clock.now());
  EXPECT_GT(later, before);
}

TEST(FailureDetectorTest, silence_goes_suspect_then_dead) {
  ManualClock clock;
  FailureDetector fd;
  for (int i = 0; i < 20; ++i) {
    fd.heartbeat(clock.now());
    clock.advance(1s);
  }
  Liveness seen = Liveness::alive;
  bool saw_suspect = false;
  for (int step = 0; step < 400 && seen != Liveness::dead; ++step) {
    clock.advance(100ms);
    seen = fd.liveness(clock.now());
    saw_suspect = saw_suspect || seen == Liveness::suspect;
  }
  EXPECT_TRUE(saw_suspect);
  EXPECT_EQ(seen, Liveness::dead);
  EXPECT_LT(fd.since_last(clock.now()), 31s);  // the hard timeout bounds detection
}

TEST(FailureDetectorTest, jitter_within_the_acceptable_pause_is_tolerated) {
  ManualClock clock;
  FailureDetector fd;
  std::mt19937 rng(7);
  std::uniform_int_distribution<int> jitter_ms(0, 1500);  // a WAN link: 1 s period, 0–1.5 s late
  for (int i = 0; i < 200; ++i) {
    fd.heartbeat(clock.now());
    auto gap = 1s + std::chrono::milliseconds(jitter_ms(rng));
    clock.advance(gap);
    EXPECT_EQ(fd.liveness(clock.now()), Liveness::alive) << "beat " << i;
  }
}

TEST(FailureDetectorTest, a_heartbeat_brings_a_suspect_back) {
  ManualClock clock;
  FailureDetector fd;
  for (int i = 0; i < 10; ++i) {
    fd.heartbeat(clock.now());
    clock.advance(1s);
  }
  clock.advance(5s);
  EXPECT_NE(fd.liveness(clock.now()), Liveness::alive);
  fd.heartbeat(clock.now());
  EXPECT_EQ(fd.liveness(clock.now()), Liveness::alive);
}

TEST(FailureDetectorTest, hard_timeout_applies_without_any_interval) {
  ManualClock clock;
  FailureDetector fd({.dead_after = 2s});
  fd.heartbeat(clock.now());
  clock.advance(2s);
  EXPECT_EQ(fd.liveness(clock.now()), Liveness::dead);
}

}  // namespace
