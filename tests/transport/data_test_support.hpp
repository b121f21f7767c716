// Shared by the data-plane tests: a receiver that records what arrives, byte patterns that reveal
// misplaced or missing bytes, bounded waits, and the UCX skip rule.
#pragma once

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <cstring>
#include <future>
#include <mutex>
#include <ostream>
#include <span>
#include <string>
#include <thread>
#include <vector>

#include "transport/auth.hpp"
#include "transport/data_plane.hpp"

namespace atl::transport {
// How gtest prints a backend parameter.
inline void PrintTo(DataBackend backend, std::ostream* os) {
  *os << to_string(backend);
}
}  // namespace atl::transport

namespace atl::data_test {

using namespace std::chrono_literals;
using transport::Allocation;
using transport::DataBackend;
using transport::DataPlaneOptions;
using transport::IncomingObject;
using transport::ReceiveHandlers;

inline constexpr auto kWait = 30s;  // generous bound: a hang fails, slowness never does

template <class Pred>
bool eventually(Pred pred, std::chrono::milliseconds timeout = kWait) {
  const auto deadline = std::chrono::steady_clock::now() + timeout;
  while (!pred()) {
    if (std::chrono::steady_clock::now() > deadline) return pred();
    std::this_thread::sleep_for(1ms);
  }
  return true;
}

inline std::uint64_t mix(std::uint64_t x) {
  x += 0x9E3779B97F4A7C15ull;
  x = (x ^ (x >> 30)) * 0xBF58476D1CE4E5B9ull;
  x = (x ^ (x >> 27)) * 0x94D049BB133111EBull;
  return x ^ (x >> 31);
}

// Byte i of pattern `seed`: every 8-byte word differs, so a chunk landing at the wrong offset or
// a lost chunk shows.
inline void fill(std::span<std::byte> out, std::uint64_t seed) {
  std::size_t i = 0;
  for (; i + 8 <= out.size(); i += 8) {
    std::uint64_t v = mix(seed ^ i);
    std::memcpy(out.data() + i, &v, 8);
  }
  if (i == out.size()) return;
  std::uint64_t v = mix(seed ^ i);
  std::memcpy(out.data() + i, &v, out.size() - i);
}

// The first offset that differs from the pattern, or -1.
inline std::int64_t mismatch(std::span<const std::byte> in, std::uint64_t seed) {
  std::size_t i = 0;
  for (; i + 8 <= in.size(); i += 8) {
    std::uint64_t v = mix(seed ^ i);
    if (std::memcmp(in.data() + i, &v, 8) != 0) return static_cast<std::int64_t>(i);
  }
  if (i == in.size()) return -1;
  std::uint64_t v = mix(seed ^ i);
  if (std::memcmp(in.data() + i, &v, in.size() - i) != 0) return static_cast<std::int64_t>(i);
  return -1;
}

using Failure = std::pair<ErrorCategory, std::string>;

// A send in flight, watched from the test thread. Its outcome crosses threads as plain values
// (category and message), never as an exception object shared between threads.
class PendingSend {
 public:
  PendingSend(transport::DataChannel& channel, ObjectId id, Buffer bytes)
      : state_(std::make_shared<State>()) {
    channel.send(id, std::move(bytes), [s = state_](transport::IoError e) {
      std::lock_guard lock(s->mu);
      s->done = true;
      if (e) s->failure.emplace(e->category(), std::string(e->what()));
      s->cv.notify_all();
    });
  }
  // Waits, bounded; false if the send never finished.
  bool finished() {
    std::unique_lock lock(state_->mu);
    return state_->cv.wait_for(lock, kWait, [&] { return state_->done; });
  }
  std::optional<Failure> failure() {
    std::lock_guard lock(state_->mu);
    return state_->failure;
  }

 private:
  struct State {
    std::mutex mu;
    std::condition_variable cv;
    bool done = false;
    std::optional<Failure> failure;
  };
  std::shared_ptr<State> state_;
};

// A send that must succeed, within the bounded wait.
inline void expect_sent(PendingSend send) {
  ASSERT_TRUE(send.finished()) << "a send hung";
  auto failure = send.failure();
  EXPECT_FALSE(failure) << "the send failed: " << failure->second;
}

// A send that must fail: its failure (a hang or a success is a test failure).
inline Failure expect_failed(PendingSend send) {
  if (!send.finished()) {
    ADD_FAILURE() << "a send hung";
    return {ErrorCategory::failed, "hung"};
  }
  auto failure = send.failure();
  if (!failure) {
    ADD_FAILURE() << "a send that should fail succeeded";
    return {ErrorCategory::failed, "succeeded"};
  }
  return *failure;
}

inline Buffer patterned(std::size_t size, std::uint64_t seed) {
  MutableBuffer b = MutableBuffer::allocate(size);
  fill(b.bytes(), seed);
  return std::move(b).freeze();
}

// Holds a data-plane callback (and so the plane's thread) until the test opens it; the wait is
// bounded, so a test that forgets to open costs time, never a hang.
class Gate {
 public:
  void wait() {
    std::unique_lock lock(mu_);
    entered_ = true;
    cv_.notify_all();
    cv_.wait_for(lock, kWait, [&] { return open_; });
  }
  bool wait_entered() {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return entered_; });
  }
  void open() {
    std::lock_guard lock(mu_);
    open_ = true;
    cv_.notify_all();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  bool entered_ = false, open_ = false;
};

// Records what a data plane receives; its allocate may be replaced.
class Receiver {
 public:
  struct Object {
    IncomingObject info;
    Buffer bytes;
  };

  std::function<Allocation(const IncomingObject&)> allocate = [](const IncomingObject& o) {
    return Allocation::accept(MutableBuffer::allocate(o.size));
  };
  std::function<void(const IncomingObject&)> on_received_hook;
  std::function<void(const IncomingObject&, std::uint64_t)> progress_hook;

  ReceiveHandlers handlers() {
    return {.allocate =
                [this](const IncomingObject& o) {
                  {
                    std::lock_guard lock(mu_);
                    ++allocations_;
                  }
                  return allocate(o);
                },
            .on_progress =
                [this](const IncomingObject& o, std::uint64_t received) {
                  if (progress_hook) progress_hook(o, received);
                },
            .on_received =
                [this](const IncomingObject& o, MutableBuffer b) {
                  if (on_received_hook) on_received_hook(o);
                  std::lock_guard lock(mu_);
                  objects_.push_back({o, std::move(b).freeze()});
                  cv_.notify_all();
                },
            .on_failed =
                [this](const IncomingObject& o, const Error& e) {
                  std::lock_guard lock(mu_);
                  failures_.emplace_back(o, e);
                  cv_.notify_all();
                },
            .on_channel =
                [this](transport::DataChannelPtr c) {
                  std::lock_guard lock(mu_);
                  channels_.push_back(std::move(c));
                  cv_.notify_all();
                }};
  }

  bool wait_objects(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return objects_.size() >= n; });
  }
  bool wait_failures(std::size_t n) {
    std::unique_lock lock(mu_);
    return cv_.wait_for(lock, kWait, [&] { return failures_.size() >= n; });
  }
  transport::DataChannelPtr wait_channel() {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, kWait, [&] { return !channels_.empty(); })) return nullptr;
    return channels_.front();
  }
  std::vector<Object> objects() {
    std::lock_guard lock(mu_);
    return objects_;
  }
  std::vector<std::pair<IncomingObject, Error>> failures() {
    std::lock_guard lock(mu_);
    return failures_;
  }
  std::size_t allocations() {
    std::lock_guard lock(mu_);
    return allocations_;
  }
  void drop_channels() {
    std::lock_guard lock(mu_);
    channels_.clear();
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Object> objects_;
  std::vector<std::pair<IncomingObject, Error>> failures_;
  std::vector<transport::DataChannelPtr> channels_;
  std::size_t allocations_ = 0;
};

// Why the UCX backend's tests cannot run in this build, or empty.
inline std::string ucx_skip_reason() {
#if !defined(ATOLL_WITH_UCX) && defined(__SANITIZE_THREAD__)
  return "ThreadSanitizer builds leave UCX out (its libucm memory hooks crash TSan at thread "
         "exit): the UCX backend is tested in the normal and ASan builds";
#elif !defined(ATOLL_WITH_UCX)
  return "built without UCX (ATOLL_WITH_UCX=OFF): the UCX backend is not compiled in";
#else
  return {};
#endif
}

inline DataPlaneOptions options_for(DataBackend backend, const std::string& token,
                                    const std::string& name) {
  DataPlaneOptions o;
  o.token = token;
  o.name = name;
  o.backend = backend;
  // Between nodes UCX runs over the network: test that path, not shared memory.
  o.ucx_transports = "tcp";
  return o;
}

inline std::string backend_name(const ::testing::TestParamInfo<DataBackend>& info) {
  return std::string(transport::to_string(info.param));
}

}  // namespace atl::data_test
