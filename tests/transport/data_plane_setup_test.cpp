// Setting a data plane up: addresses in text, options refused with a reason, the UCX-to-TCP
// fallback (and that mixed planes still talk), UCX with its own choice of transports.
#include <gtest/gtest.h>

#include "tests/transport/data_test_support.hpp"

namespace atl::data_test {
namespace {

using transport::ConnectOptions;
using transport::DataAddress;
using transport::DataPlane;

TEST(DataAddress, FormatsAndParses) {
  DataAddress a{.host = "10.0.0.5", .tcp_port = 7301, .ucx_port = 7302};
  EXPECT_EQ(a.to_string(), "tcp://10.0.0.5:7301,ucx://10.0.0.5:7302");
  EXPECT_EQ(DataAddress::parse(a.to_string()), a);
  DataAddress tcp_only{.host = "node-3.example", .tcp_port = 9};
  EXPECT_EQ(tcp_only.to_string(), "tcp://node-3.example:9");
  EXPECT_EQ(DataAddress::parse("tcp://node-3.example:9"), tcp_only);
  DataAddress v6{.host = "::1", .tcp_port = 80, .ucx_port = 81};
  EXPECT_EQ(v6.to_string(), "tcp://[::1]:80,ucx://[::1]:81");
  EXPECT_EQ(DataAddress::parse(v6.to_string()), v6);
  EXPECT_EQ(DataAddress::parse("ucx://h:5").ucx_port, 5);
}

TEST(DataAddress, RefusesMalformedText) {
  for (const char* bad : {"", "10.0.0.5:7301", "tcp://10.0.0.5", "tcp://:7301", "tcp://h:0",
                          "tcp://h:65536", "tcp://h:12a", "tcp://h:1,tcp://h:2",
                          "tcp://a:1,ucx://b:2", "udp://h:1", "tcp://[::1:80", "tcp://h:123456"}) {
    try {
      DataAddress::parse(bad);
      ADD_FAILURE() << "accepted '" << bad << "'";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::invalid_argument) << bad;
    }
  }
}

TEST(DataPlaneSetup, RefusesBadOptionsWithAReason) {
  Receiver r;
  auto base = options_for(DataBackend::tcp, transport::generate_token(), "n");
  auto expect_refused = [&](DataPlaneOptions o, const char* what) {
    try {
      DataPlane p(std::move(o), r.handlers());
      ADD_FAILURE() << "accepted " << what;
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::invalid_argument) << what << ": " << e.what();
    }
  };
  auto o = base;
  o.token = "short";
  expect_refused(o, "a short token");
  o = base;
  o.name = std::string(65, 'x');
  expect_refused(o, "a long name");
  o = base;
  o.chunk_bytes = 1024;
  expect_refused(o, "tiny chunks");
  o = base;
  o.window_bytes = 1u << 20;
  o.chunk_bytes = 4u << 20;
  expect_refused(o, "a window smaller than a chunk");
  o = base;
  o.stall_timeout = std::chrono::milliseconds(0);
  expect_refused(o, "no stall timeout");
}

TEST(DataPlaneSetup, APortInUseIsNamed) {
  Receiver r;
  auto o = options_for(DataBackend::tcp, transport::generate_token(), "n");
  DataPlane first(o, r.handlers());
  o.tcp_port = first.address().tcp_port;
  try {
    DataPlane second(o, r.handlers());
    FAIL() << "two planes bound one port";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::failed);
    EXPECT_NE(std::string(e.what()).find(std::to_string(o.tcp_port)), std::string::npos)
        << e.what();
  }
}

TEST(DataPlaneSetup, ConnectRefusesAnImpossibleStreamCount) {
  Receiver r;
  const auto token = transport::generate_token();
  DataPlane a(options_for(DataBackend::tcp, token, "a"), r.handlers());
  DataPlane b(options_for(DataBackend::tcp, token, "b"), r.handlers());
  for (std::size_t streams : {std::size_t{0}, std::size_t{17}}) {
    try {
      a.connect(b.address(), ConnectOptions{.streams = streams}, kWait);
      ADD_FAILURE() << streams << " streams accepted";
    } catch (const Error& e) {
      EXPECT_EQ(e.category(), ErrorCategory::invalid_argument) << e.what();
    }
  }
}

TEST(DataPlaneSetup, ABlockingConnectOnTheDataThreadIsRefusedNotDeadlocked) {
  Receiver r;
  const auto token = transport::generate_token();
  std::unique_ptr<DataPlane> b;
  std::promise<std::string> outcome;
  auto handlers = r.handlers();
  handlers.on_channel = [&](transport::DataChannelPtr) {
    try {
      b->connect(b->address(), {}, kWait);
      outcome.set_value("connected");
    } catch (const Error& e) {
      outcome.set_value(std::string(to_string(e.category())));
    }
  };
  b = std::make_unique<DataPlane>(options_for(DataBackend::tcp, token, "b"), handlers);
  DataPlane a(options_for(DataBackend::tcp, token, "a"), r.handlers());
  auto channel = a.connect(b->address(), {}, kWait);
  auto result = outcome.get_future();
  ASSERT_EQ(result.wait_for(kWait), std::future_status::ready);
  EXPECT_EQ(result.get(), "invalid_argument");
}

TEST(DataPlaneSetup, SendAndWaitRaisesTheErrorOrTimesOut) {
  Receiver a, b;
  Gate gate;
  b.allocate = [&](const IncomingObject& o) {
    if (o.id.sequence == 1) return Allocation::refuse(ObjectStoreFullError("full (test)"));
    if (o.id.sequence == 3) gate.wait();  // holds the receiver
    return Allocation::accept(MutableBuffer::allocate(o.size));
  };
  const auto token = transport::generate_token();
  DataPlane pa(options_for(DataBackend::tcp, token, "a"), a.handlers());
  DataPlane pb(options_for(DataBackend::tcp, token, "b"), b.handlers());
  auto channel = pa.connect(pb.address(), {}, kWait);
  try {
    channel->send_and_wait({1, 1}, patterned(10, 1), kWait);
    ADD_FAILURE() << "a refused object was sent";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::overloaded) << e.what();
  }
  EXPECT_NO_THROW(channel->send_and_wait({1, 2}, patterned(5u << 20, 2), kWait));
  try {
    channel->send_and_wait({1, 3}, patterned(10, 3), 200ms);
    ADD_FAILURE() << "a send to a stuck receiver finished";
  } catch (const Error& e) {
    EXPECT_EQ(e.category(), ErrorCategory::timed_out) << e.what();
  }
  gate.open();
  ASSERT_TRUE(b.wait_objects(2));
}

TEST(DataPlaneSetup, UcxThatCannotStartFallsBackToTcpAndSaysWhy) {
  Receiver r;
  std::vector<std::string> logged;
  auto o = options_for(DataBackend::ucx, transport::generate_token(), "fallback");
  o.ucx_transports = "no_such_transport";
  o.log = [&](std::string_view line) { logged.emplace_back(line); };
  DataPlane plane(o, r.handlers());
  EXPECT_EQ(plane.backend(), DataBackend::tcp);
  EXPECT_FALSE(plane.fallback_reason().empty());
  EXPECT_EQ(plane.address().ucx_port, 0);
  ASSERT_EQ(logged.size(), 1u);
  EXPECT_NE(logged[0].find("using TCP"), std::string::npos) << logged[0];
  if (!ucx_skip_reason().empty())
    EXPECT_NE(plane.fallback_reason().find("ATOLL_WITH_UCX=OFF"), std::string::npos);
}

TEST(DataPlaneSetup, PlanesWithAndWithoutUcxStillTalk) {
  if (!ucx_skip_reason().empty()) GTEST_SKIP() << ucx_skip_reason();
  Receiver a, b;
  const auto token = transport::generate_token();
  DataPlane with_ucx(options_for(DataBackend::ucx, token, "ucx"), a.handlers());
  DataPlane tcp_only(options_for(DataBackend::tcp, token, "tcp"), b.handlers());
  ASSERT_EQ(with_ucx.backend(), DataBackend::ucx) << with_ucx.fallback_reason();
  auto there = with_ucx.connect(tcp_only.address(), {}, kWait);
  EXPECT_EQ(there->backend(), DataBackend::tcp);
  auto back = tcp_only.connect(with_ucx.address(), {}, kWait);
  EXPECT_EQ(back->backend(), DataBackend::tcp);
  auto forced = with_ucx.connect(with_ucx.address(), {.force_tcp = true}, kWait);
  EXPECT_EQ(forced->backend(), DataBackend::tcp);
  expect_sent(PendingSend(*there, {1, 1}, patterned(2u << 20, 1)));
  ASSERT_TRUE(b.wait_objects(1));
  EXPECT_EQ(mismatch(b.objects()[0].bytes.bytes(), 1), -1);
}

TEST(DataPlaneSetup, UcxWithItsOwnChoiceOfTransportsMovesObjects) {
  if (!ucx_skip_reason().empty()) GTEST_SKIP() << ucx_skip_reason();
  Receiver a, b;
  const auto token = transport::generate_token();
  auto oa = options_for(DataBackend::ucx, token, "a");
  auto ob = options_for(DataBackend::ucx, token, "b");
  oa.ucx_transports.clear();  // UCX may pick shared memory between these two workers
  ob.ucx_transports.clear();
  DataPlane pa(oa, a.handlers());
  DataPlane pb(ob, b.handlers());
  ASSERT_EQ(pa.backend(), DataBackend::ucx) << pa.fallback_reason();
  auto channel = pa.connect(pb.address(), {.streams = 2}, kWait);
  EXPECT_EQ(channel->backend(), DataBackend::ucx);
  expect_sent(PendingSend(*channel, {1, 1}, patterned((16u << 20) + 5, 3)));
  expect_sent(PendingSend(*channel, {1, 2}, patterned(10, 4)));
  ASSERT_TRUE(b.wait_objects(2));
  for (const auto& o : b.objects())
    EXPECT_EQ(mismatch(o.bytes.bytes(), o.info.id.sequence == 1 ? 3 : 4), -1);
}

}  // namespace
}  // namespace atl::data_test
