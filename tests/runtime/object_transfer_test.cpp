#include "runtime/object_transfer.hpp"

#include <gtest/gtest.h>

#include <condition_variable>
#include <future>
#include <mutex>
#include <thread>

#include "transport/auth.hpp"
#include "transport/schema/control.capnp.h"

namespace {

using namespace std::chrono_literals;
using atl::Buffer;
using atl::ObjectId;
using atl::runtime::ErrorPtr;
using atl::runtime::ObjectTransfer;

struct Outcome {
  Buffer value;
  ErrorPtr error;
};

class ObjectTransferTest : public ::testing::Test {
 protected:
  std::unique_ptr<ObjectTransfer> make(
      const std::string& name, std::uint64_t capacity,
      std::chrono::milliseconds channel_wait = atl::runtime::kChannelWait) {
    return std::make_unique<ObjectTransfer>(
        atl::runtime::ObjectTransferOptions{.token = token_,
                                            .name = name,
                                            .capacity_bytes = capacity,
                                            .backend = atl::transport::DataBackend::tcp,
                                            .channel_wait = channel_wait});
  }

  // Plays the head: a FetchObject from `receiver` becomes a push by `holder`, whose failure goes
  // back to the receiver. Tests create the receiver first: a holder's data plane may still end a
  // push (failing it) while it is destroyed, and that reaches into the receiver.
  ObjectTransfer::SendRequest head(ObjectTransfer& holder, ObjectTransfer& receiver) {
    return [&holder, &receiver, this](capnp::MessageBuilder& msg) {
      auto fetch = msg.getRoot<atl::wire::Envelope>().asReader().getBody().getFetchObject();
      ObjectId id{fetch.getObject().getOwner(), fetch.getObject().getSequence()};
      std::uint64_t attempt = fetch.getAttempt();
      EXPECT_NE(attempt, 0u);
      ++requests_;
      holder.push(id, fetch.getPeer(), [&receiver, id, attempt](std::string error) {
        if (!error.empty()) receiver.fetch_failed(id, attempt, error);
      });
    };
  }

  Outcome fetch(ObjectTransfer& receiver, ObjectTransfer& holder, ObjectId id, std::uint64_t size,
                const std::string& address = "") {
    // Shared with the callback: a late one must not touch a finished test's stack.
    auto done = std::make_shared<std::promise<Outcome>>();
    receiver.fetch(id, size, address.empty() ? holder.address() : address, holder.name(),
                   head(holder, receiver), [done](Buffer value, ErrorPtr error) {
                     done->set_value({value, error});
                   });
    auto f = done->get_future();
    if (f.wait_for(30s) != std::future_status::ready) {
      ADD_FAILURE() << "the fetch did not end within 30 s";
      return {{}, atl::runtime::make_error(atl::ErrorKind::timed_out, "fetch hung")};
    }
    return f.get();
  }

  static Buffer pattern(std::size_t size) {
    std::string bytes(size, '\0');
    for (std::size_t i = 0; i < size; ++i) bytes[i] = static_cast<char>(i * 31 + 7);
    return Buffer::copy_of(bytes.data(), bytes.size());
  }

  std::string token_ = atl::transport::generate_token();
  std::atomic<int> requests_{0};
};

TEST_F(ObjectTransferTest, a_held_object_reaches_its_fetcher_byte_for_byte) {
  auto receiver = make("receiver", 64 << 20);
  auto holder = make("holder", 64 << 20);
  ObjectId id{7, 1};
  Buffer value = pattern(3 << 20);  // several chunks
  holder->hold(id, value);
  EXPECT_EQ(holder->bytes_held(), value.size());
  auto got = fetch(*receiver, *holder, id, value.size());
  ASSERT_EQ(got.error, nullptr) << got.error->message;
  ASSERT_EQ(got.value.size(), value.size());
  EXPECT_TRUE(std::equal(value.bytes().begin(), value.bytes().end(), got.value.bytes().begin()));
  // A second fetch reuses the channel and sends one more request.
  auto again = fetch(*receiver, *holder, id, value.size());
  EXPECT_EQ(again.error, nullptr);
  EXPECT_EQ(requests_.load(), 2);
  EXPECT_EQ(receiver->bytes_held(), 0u);  // fetched copies are the caller's, not held
}

TEST_F(ObjectTransferTest, an_object_the_holder_lacks_is_lost) {
  auto receiver = make("receiver", 1 << 20);
  auto holder = make("holder", 1 << 20);
  auto got = fetch(*receiver, *holder, ObjectId{7, 2}, 1000);
  ASSERT_NE(got.error, nullptr);
  EXPECT_EQ(got.error->kind, atl::ErrorKind::object_lost);
  EXPECT_NE(got.error->message.find("not held"), std::string::npos) << got.error->message;
}

TEST_F(ObjectTransferTest, a_fetch_that_does_not_fit_fails_store_full) {
  auto receiver = make("receiver", 1 << 20);
  auto holder = make("holder", 8 << 20);
  ObjectId id{7, 3};
  holder->hold(id, pattern(2 << 20));
  auto got = fetch(*receiver, *holder, id, 2 << 20);
  ASSERT_NE(got.error, nullptr);
  EXPECT_EQ(got.error->kind, atl::ErrorKind::store_full);
  EXPECT_NE(got.error->message.find("full"), std::string::npos) << got.error->message;
}

TEST_F(ObjectTransferTest, holding_beyond_capacity_is_refused_and_release_frees_room) {
  auto holder = make("holder", 1 << 20);
  holder->hold(ObjectId{9, 1}, pattern(600 << 10));
  try {
    holder->hold(ObjectId{9, 2}, pattern(600 << 10));
    FAIL() << "expected overloaded";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::overloaded);
    EXPECT_NE(std::string(e.what()).find("full"), std::string::npos) << e.what();
  }
  holder->hold(ObjectId{8, 1}, pattern(100));
  holder->release_owner(9);
  EXPECT_EQ(holder->objects_held(), 1u);
  EXPECT_TRUE(holder->held(ObjectId{8, 1}).has_value());
  holder->hold(ObjectId{9, 2}, pattern(600 << 10));  // room again
  holder->release(ObjectId{9, 2});
  EXPECT_EQ(holder->bytes_held(), 100u);
}

TEST_F(ObjectTransferTest, an_unreachable_holder_or_bad_address_loses_the_object) {
  auto receiver = make("receiver", 1 << 20);
  auto holder = make("holder", 1 << 20);
  auto bad = fetch(*receiver, *holder, ObjectId{7, 4}, 10, "not an address");
  ASSERT_NE(bad.error, nullptr);
  EXPECT_EQ(bad.error->kind, atl::ErrorKind::object_lost);
  std::string gone_address;
  {
    auto gone = make("gone", 1 << 20);
    gone_address = gone->address();
  }
  auto unreachable = fetch(*receiver, *holder, ObjectId{7, 5}, 10, gone_address);
  ASSERT_NE(unreachable.error, nullptr);
  EXPECT_NE(unreachable.error->message.find("unreachable"), std::string::npos)
      << unreachable.error->message;
}

TEST_F(ObjectTransferTest, another_process_at_the_holder_s_address_is_not_the_holder) {
  // An address like 127.0.0.1:PORT names a different process on each host: the reader checks the
  // name of the peer it reached, and treats a stranger as no direct path.
  auto receiver = make("receiver", 1 << 20);
  auto holder = make("holder", 1 << 20);
  auto stranger = make("stranger", 1 << 20);
  ObjectId id{7, 6};
  holder->hold(id, pattern(1000));
  auto got = fetch(*receiver, *holder, id, 1000, stranger->address());
  ASSERT_NE(got.error, nullptr);
  EXPECT_EQ(got.error->kind, atl::ErrorKind::object_lost);
  EXPECT_NE(got.error->message.find("not 'holder'"), std::string::npos) << got.error->message;
  EXPECT_EQ(requests_.load(), 0);  // nothing was asked of the stranger
}

// The head as a test drives it: FetchObjects are kept (with their attempt) until answered.
class RecordingHead {
 public:
  struct Request {
    ObjectId id;
    std::string peer;
    std::uint64_t attempt = 0;
  };
  ObjectTransfer::SendRequest sender() {
    return [this](capnp::MessageBuilder& msg) {
      auto fetch = msg.getRoot<atl::wire::Envelope>().asReader().getBody().getFetchObject();
      std::lock_guard lock(mu_);
      requests_.push_back({{fetch.getObject().getOwner(), fetch.getObject().getSequence()},
                           fetch.getPeer(),
                           fetch.getAttempt()});
      cv_.notify_all();
    };
  }
  // The n-th request (from 0), once it came.
  std::optional<Request> request(std::size_t n) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, 30s, [&] { return requests_.size() > n; })) return std::nullopt;
    return requests_[n];
  }

 private:
  std::mutex mu_;
  std::condition_variable cv_;
  std::vector<Request> requests_;
};

TEST_F(ObjectTransferTest, a_late_error_for_an_earlier_attempt_does_not_fail_a_later_fetch) {
  auto receiver = make("receiver", 64 << 20);
  auto holder = make("holder", 64 << 20);
  ObjectId id{7, 7};
  Buffer value = pattern(1 << 20);
  holder->hold(id, value);
  RecordingHead head;
  auto fetch = [&] {
    auto done = std::make_shared<std::promise<Outcome>>();
    receiver->fetch(id, value.size(), holder->address(), holder->name(), head.sender(),
                    [done](Buffer v, ErrorPtr e) {
                      done->set_value({v, e});
                    });
    return done->get_future();
  };
  auto first = fetch();
  auto asked_first = head.request(0);
  ASSERT_TRUE(asked_first.has_value());
  // The first attempt ends on the reader's side (as when its head connection broke), while the
  // holder still works on its push; a `get` then tries again.
  receiver->fail_fetches("the head was lost");
  ASSERT_NE(first.get().error, nullptr);
  auto second = fetch();
  auto asked_second = head.request(1);
  ASSERT_TRUE(asked_second.has_value());
  EXPECT_NE(asked_second->attempt, asked_first->attempt);

  // The first push's failure comes back late: it says nothing about the second attempt.
  receiver->fetch_failed(id, asked_first->attempt, "the reader opened no data channel in time");
  ASSERT_EQ(second.wait_for(0s), std::future_status::timeout)
      << "a stale error failed the fetch: " << second.get().error->message;

  holder->push(id, asked_second->peer, [&receiver, id, a = asked_second->attempt](std::string e) {
    if (!e.empty()) receiver->fetch_failed(id, a, e);
  });
  ASSERT_EQ(second.wait_for(30s), std::future_status::ready);
  auto got = second.get();
  ASSERT_EQ(got.error, nullptr) << got.error->message;
  EXPECT_TRUE(std::equal(value.bytes().begin(), value.bytes().end(), got.value.bytes().begin()));
  // Its own attempt's error still counts (here after the end: nothing left to fail).
  receiver->fetch_failed(id, asked_second->attempt, "late");
}

TEST_F(ObjectTransferTest, a_push_waiting_for_its_reader_s_channel_expires) {
  // The reader's channel never comes: its FetchObject arrived, its data plane did not.
  auto hasty = make("hasty", 1 << 20, 1ms);
  auto patient = make("patient", 1 << 20);  // kChannelWait: 30 s
  ObjectId id{7, 8};
  hasty->hold(id, pattern(1000));
  patient->hold(id, pattern(1000));
  struct Done {
    std::mutex mu;
    std::optional<std::string> error;
  };
  auto push = [id](ObjectTransfer& holder) {
    auto done = std::make_shared<Done>();
    holder.push(id, "reader-that-never-dials", [done](std::string error) {
      std::lock_guard lock(done->mu);
      done->error = std::move(error);
    });
    return done;
  };
  auto ended = [](Done& d) {
    std::lock_guard lock(d.mu);
    return d.error.has_value();
  };
  auto expired = push(*hasty);
  auto waiting = push(*patient);
  for (int i = 0; i < 3000 && !ended(*expired); ++i) {
    hasty->expire();  // what a node's heartbeat or the head's sweep does
    if (!ended(*expired)) std::this_thread::sleep_for(10ms);
  }
  ASSERT_TRUE(ended(*expired));
  EXPECT_NE(expired->error->find("opened no data channel to 'hasty' within 1 ms"),
            std::string::npos)
      << *expired->error;
  patient->expire();
  EXPECT_FALSE(ended(*waiting)) << "a push gave up before kChannelWait";
  patient.reset();  // a holder shutting down fails what still waits
  ASSERT_TRUE(ended(*waiting));
  EXPECT_NE(waiting->error->find("shutting down"), std::string::npos) << *waiting->error;
}

TEST_F(ObjectTransferTest, data_hosts_are_ip_addresses_or_host_names) {
  using atl::runtime::data_host_problem;
  for (const char* good :
       {"127.0.0.1", "0.0.0.0", "::", "fe80::1", "node-7.example.com", "localhost"})
    EXPECT_EQ(data_host_problem(good), "") << good;
  for (const char* bad : {"", "10.0.0.1:7300", "tcp://10.0.0.1", "not a host", "-bad.example",
                          "bad-.example", "a..b", "[::1]"})
    EXPECT_NE(data_host_problem(bad), "") << bad;
  EXPECT_NE(data_host_problem(std::string(101, 'a')), "");
  try {
    ObjectTransfer bad({.token = token_, .name = "bad", .advertise_host = "10.0.0.1:7300"});
    FAIL() << "expected invalid_argument";
  } catch (const atl::Error& e) {
    EXPECT_EQ(e.category(), atl::ErrorCategory::invalid_argument);
    EXPECT_NE(std::string(e.what()).find("advertised host '10.0.0.1:7300'"), std::string::npos)
        << e.what();
  }
}

}  // namespace
