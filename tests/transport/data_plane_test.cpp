// The data plane between two DataPlanes in this process, over 127.0.0.1, on each backend: objects
// of every awkward size arrive intact, several streams stripe one object, both directions work,
// refusals (size limit, store full, wrong token) reach the sender with their category, flow
// control holds the sender to the receiver's window, and stalls and shutdowns end in errors
// rather than hangs.
#include "transport/data_plane.hpp"

#include <gtest/gtest.h>

#include "tests/transport/data_test_support.hpp"

namespace atl::data_test {
namespace {

using transport::ConnectOptions;
using transport::DataChannelPtr;
using transport::DataPlane;

class DataPlaneTest : public ::testing::TestWithParam<DataBackend> {
 protected:
  void SetUp() override {
    if (GetParam() == DataBackend::ucx && !ucx_skip_reason().empty())
      GTEST_SKIP() << ucx_skip_reason();
    token_ = transport::generate_token();
  }

  DataPlaneOptions options(const std::string& name) const {
    return options_for(GetParam(), token_, name);
  }

  std::unique_ptr<DataPlane> plane(DataPlaneOptions o, Receiver& r) {
    auto p = std::make_unique<DataPlane>(std::move(o), r.handlers());
    EXPECT_EQ(p->backend(), GetParam()) << p->fallback_reason();
    return p;
  }

  DataChannelPtr connect(DataPlane& from, DataPlane& to, std::size_t streams = 1) {
    auto channel = from.connect(to.address(), ConnectOptions{.streams = streams}, kWait);
    EXPECT_EQ(channel->backend(), GetParam());
    return channel;
  }

  // Sends and waits; the failure, if it failed.
  static std::optional<Failure> send(transport::DataChannel& c, ObjectId id, Buffer b) {
    PendingSend p(c, id, std::move(b));
    if (!p.finished()) return Failure{ErrorCategory::timed_out, "hung"};
    return p.failure();
  }

  std::string token_;
};

TEST_P(DataPlaneTest, ObjectsOfEverySizeArriveIntact) {
  Receiver a, b;
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb);
  const std::vector<std::size_t> sizes = {
      0, 1, 7, 4095, 1 << 20, (1 << 20) + 1, 3 * (1 << 20) + 12345, (64u << 20) + 7};
  std::vector<PendingSend> sends;
  for (std::size_t i = 0; i < sizes.size(); ++i)
    sends.emplace_back(*channel, ObjectId{.owner = 9, .sequence = i}, patterned(sizes[i], i));
  for (auto& p : sends) expect_sent(p);
  ASSERT_TRUE(b.wait_objects(sizes.size()));
  auto got = b.objects();
  ASSERT_EQ(got.size(), sizes.size());
  for (const auto& o : got) {
    const auto i = o.info.id.sequence;
    ASSERT_LT(i, sizes.size());
    EXPECT_EQ(o.info.id.owner, 9u);
    EXPECT_EQ(o.info.peer, "a");
    EXPECT_EQ(o.info.size, sizes[i]);
    ASSERT_EQ(o.bytes.size(), sizes[i]);
    EXPECT_EQ(mismatch(o.bytes.bytes(), i), -1) << "object " << i << " of " << sizes[i] << " bytes";
  }
  auto stats = channel->stats();
  EXPECT_EQ(stats.objects_sent, sizes.size());
  std::uint64_t total = 0;
  for (auto s : sizes) total += s;
  EXPECT_EQ(stats.bytes_sent, total);
  EXPECT_EQ(stats.in_flight_bytes, 0u);
}

TEST_P(DataPlaneTest, LargeObjectStripedOverSeveralStreams) {
  Receiver a, b;
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb, 4);
  EXPECT_EQ(channel->stats().streams, 4u);
  const std::size_t size = (256u << 20) + 3;
  expect_sent(PendingSend(*channel, {1, 1}, patterned(size, 77)));
  ASSERT_TRUE(b.wait_objects(1));
  auto got = b.objects();
  ASSERT_EQ(got[0].bytes.size(), size);
  EXPECT_EQ(mismatch(got[0].bytes.bytes(), 77), -1);
  auto accepted = b.wait_channel();
  ASSERT_TRUE(accepted);
  EXPECT_EQ(accepted->stats().streams, 4u);
  EXPECT_EQ(accepted->stats().bytes_received, size);
}

TEST_P(DataPlaneTest, TheAcceptingSideSendsBackOnTheSameChannel) {
  Receiver a, b;
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb, 2);
  auto back = b.wait_channel();
  ASSERT_TRUE(back);
  EXPECT_EQ(back->peer_name(), "a");
  EXPECT_EQ(channel->peer_name(), "b");
  PendingSend there(*channel, {1, 1}, patterned(5u << 20, 1));
  PendingSend here(*back, {2, 2}, patterned(6u << 20, 2));
  expect_sent(there);
  expect_sent(here);
  ASSERT_TRUE(a.wait_objects(1));
  EXPECT_EQ(mismatch(a.objects()[0].bytes.bytes(), 2), -1);
  EXPECT_EQ(mismatch(b.objects()[0].bytes.bytes(), 1), -1);
}

TEST_P(DataPlaneTest, AWrongTokenIsRefusedBeforeAnyData) {
  Receiver a, b;
  auto pb = plane(options("b"), b);
  auto other = options("a");
  other.token = transport::generate_token();
  auto pa = plane(other, a);
  try {
    pa->connect(pb->address(), {}, kWait);
    FAIL() << "a data plane with another token connected";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::failed) << e.what();
    EXPECT_NE(std::string(e.what()).find("cluster token"), std::string::npos) << e.what();
  }
  EXPECT_TRUE(eventually([&] { return pb->stats().handshakes_refused >= 1; }));
  EXPECT_EQ(pb->stats().channels_opened, 0u);
  EXPECT_EQ(b.allocations(), 0u);
}

TEST_P(DataPlaneTest, AnObjectAboveTheReceiversLimitIsRefusedWithoutAllocating) {
  Receiver a, b;
  auto small = options("b");
  small.max_object_bytes = 1000;
  auto pa = plane(options("a"), a);
  auto pb = plane(small, b);
  auto channel = connect(*pa, *pb);
  // Eager (one chunk) and offered (several chunks): both refused, neither allocated.
  for (std::size_t size : {std::size_t{5000}, std::size_t{5u << 20}}) {
    auto error = send(*channel, {1, size}, patterned(size, 3));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->first, ErrorCategory::invalid_argument) << error->second;
    EXPECT_NE(error->second.find("exceeds this node's limit"), std::string::npos) << error->second;
  }
  EXPECT_EQ(b.allocations(), 0u);
  // The refused eager chunk was read and dropped: the channel still works.
  expect_sent(PendingSend(*channel, {2, 2}, patterned(1000, 4)));
  ASSERT_TRUE(b.wait_objects(1));
  EXPECT_EQ(mismatch(b.objects()[0].bytes.bytes(), 4), -1);
}

TEST_P(DataPlaneTest, AFullStoreGivesTheSenderAnOverloadedError) {
  Receiver a, b;
  std::atomic<bool> full{true};
  b.allocate = [&](const IncomingObject& o) {
    if (full) return Allocation::refuse(ObjectStoreFullError("the object store is full (test)"));
    return Allocation::accept(MutableBuffer::allocate(o.size));
  };
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb);
  for (std::size_t size : {std::size_t{100}, std::size_t{3u << 20}}) {
    auto error = send(*channel, {1, size}, patterned(size, 5));
    ASSERT_TRUE(error);
    EXPECT_EQ(error->first, ErrorCategory::overloaded) << error->second;
    EXPECT_NE(error->second.find("object store is full"), std::string::npos) << error->second;
  }
  full = false;
  expect_sent(PendingSend(*channel, {2, 2}, patterned(3u << 20, 6)));
  ASSERT_TRUE(b.wait_objects(1));
  EXPECT_EQ(b.objects()[0].info.id.sequence, 2u);
}

TEST_P(DataPlaneTest, ASlowReceiverHoldsTheSenderToItsWindow) {
  Receiver a, b;
  Gate gate;
  std::atomic<bool> blocked{false};
  b.progress_hook = [&](const IncomingObject&, std::uint64_t) {
    if (!blocked.exchange(true)) gate.wait();  // the receiver's data thread stops reading
  };
  auto receiver_options = options("b");
  receiver_options.chunk_bytes = 64 * 1024;
  receiver_options.window_bytes = 256 * 1024;
  auto pa = plane(options("a"), a);
  auto pb = plane(receiver_options, b);
  auto channel = connect(*pa, *pb);
  const std::uint64_t window = channel->stats().window_bytes;
  ASSERT_EQ(window, 256u * 1024);
  EXPECT_EQ(channel->stats().chunk_bytes, 64u * 1024);  // the receiver's limit wins
  PendingSend big(*channel, {1, 2}, patterned(32u << 20, 2));
  // The sender fills the window, then waits: nothing more leaves it while the receiver is stuck.
  ASSERT_TRUE(eventually([&] { return channel->stats().in_flight_bytes == window; }))
      << "in flight " << channel->stats().in_flight_bytes << ", sent "
      << channel->stats().bytes_sent;
  const auto sent = channel->stats().bytes_sent;
  std::this_thread::sleep_for(200ms);  // room for a sender without flow control to run ahead
  EXPECT_EQ(channel->stats().bytes_sent, sent);
  EXPECT_LE(sent, window);
  EXPECT_EQ(channel->stats().in_flight_bytes, window);
  gate.open();
  expect_sent(big);
  EXPECT_LE(channel->stats().peak_stream_in_flight_bytes, window);
  ASSERT_TRUE(b.wait_objects(1));
  EXPECT_EQ(mismatch(b.objects()[0].bytes.bytes(), 2), -1);
}

TEST_P(DataPlaneTest, APeerThatStopsRespondingTimesOut) {
  Receiver a, b;
  Gate gate;
  b.on_received_hook = [&](const IncomingObject&) { gate.wait(); };
  auto sender_options = options("a");
  sender_options.stall_timeout = 300ms;
  auto pa = plane(sender_options, a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb);
  Buffer small = patterned(100, 1), big = patterned(64u << 20, 2);
  PendingSend first(*channel, {1, 1}, small);  // its delivery holds the receiver's thread
  PendingSend second(*channel, {1, 2}, big);   // cannot finish either
  auto failure = expect_failed(first);
  EXPECT_EQ(failure.first, ErrorCategory::timed_out) << failure.second;
  expect_failed(second);
  EXPECT_TRUE(channel->closed());
  gate.open();
}

TEST_P(DataPlaneTest, ClosingAChannelFailsWhatIsPendingOnBothSides) {
  Receiver a, b;
  Gate gate;
  b.progress_hook = [&](const IncomingObject&, std::uint64_t received) {
    if (received >= (1u << 20)) gate.wait();  // mid-transfer
  };
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb);
  PendingSend big(*channel, {1, 2}, patterned(64u << 20, 2));
  ASSERT_TRUE(gate.wait_entered());
  channel->close();
  auto failure = expect_failed(big);
  EXPECT_EQ(failure.first, ErrorCategory::cancelled) << failure.second;
  gate.open();
  ASSERT_TRUE(b.wait_failures(1));
  EXPECT_EQ(b.failures()[0].first.id.sequence, 2u);
  EXPECT_EQ(b.failures()[0].second.category(), ErrorCategory::disconnected)
      << b.failures()[0].second.what();
  EXPECT_TRUE(b.objects().empty());
  // A send after close fails at once, not never.
  auto late = send(*channel, {1, 3}, patterned(10, 3));
  ASSERT_TRUE(late);
  EXPECT_EQ(late->first, ErrorCategory::disconnected);
}

TEST_P(DataPlaneTest, AReceiverShuttingDownMidTransferDisconnectsTheSender) {
  Receiver a, b;
  Gate gate;
  b.progress_hook = [&](const IncomingObject&, std::uint64_t received) {
    if (received >= (8u << 20)) gate.wait();
  };
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb);
  PendingSend big(*channel, {1, 1}, patterned(256u << 20, 1));
  ASSERT_TRUE(gate.wait_entered());
  auto accepted = b.wait_channel();
  ASSERT_TRUE(accepted);
  b.drop_channels();
  // Stop the receiving plane while its thread is held mid-transfer: once its gate is shut (a send
  // on its channel then fails at once), the shutdown is queued ahead of any further reads.
  std::thread stopper([&] { pb.reset(); });
  auto refused = std::make_shared<std::atomic<bool>>(false);
  ASSERT_TRUE(eventually([&] {
    accepted->send({9, 9}, Buffer{}, [refused](transport::IoError e) {
      if (e && e->category() == ErrorCategory::disconnected) *refused = true;
    });
    return refused->load();
  }));
  gate.open();
  stopper.join();
  auto failure = expect_failed(big);
  EXPECT_EQ(failure.first, ErrorCategory::disconnected) << failure.second;
}

TEST_P(DataPlaneTest, AChannelOutlivingItsPlaneFailsSendsAtOnce) {
  Receiver a, b;
  auto pa = plane(options("a"), a);
  auto pb = plane(options("b"), b);
  auto channel = connect(*pa, *pb);
  pa.reset();
  EXPECT_TRUE(channel->closed());
  auto error = send(*channel, {1, 1}, patterned(10, 1));
  ASSERT_TRUE(error);
  EXPECT_EQ(error->first, ErrorCategory::disconnected);
}

TEST_P(DataPlaneTest, ConnectingToNobodyFailsWithDisconnected) {
  Receiver a, b;
  auto pa = plane(options("a"), a);
  auto address = [&] {
    auto pb = plane(options("b"), b);
    return pb->address();
  }();  // nothing listens there any more
  try {
    pa->connect(address, {}, kWait);
    FAIL() << "connected to a closed port";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::disconnected) << e.what();
  }
}

INSTANTIATE_TEST_SUITE_P(Backends, DataPlaneTest,
                         ::testing::Values(DataBackend::tcp, DataBackend::ucx), backend_name);

}  // namespace
}  // namespace atl::data_test
