// The codec on the actor and lease messages: well-formed ones pass, and every key, count, enum and
// text a driver or node could get wrong is refused.
#include <tuple>
#include <vector>

#include "tests/transport/codec_test_support.hpp"

namespace atl::transport {
namespace {

using namespace codec_test;

constexpr const char* kHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

void fill_spec(wire::ActorSpec::Builder spec) {
  spec.initActor().setOwner(7);
  spec.getActor().setSequence(1);
  spec.setModuleHash(kHash);
  spec.setModuleName("job");
  spec.setClassName("Counter");
  spec.setMaxConcurrency(1);
}

std::string decode_error(capnp::MallocMessageBuilder& m) {
  return decode_envelope(to_frame(m)).error;
}

TEST(CodecActorTest, AWellFormedActorSpecAndCallPass) {
  capnp::MallocMessageBuilder create;
  auto spec = create.initRoot<wire::Envelope>().getBody().initCreateActor();
  fill_spec(spec);
  auto sel = spec.initLabelSelector(1);
  sel[0].setKey("island");
  sel[0].setOp(wire::SelectorOp::NOT_IN);
  sel[0].initValues(1).set(0, "eu-1");
  auto decoded = decode_envelope(to_frame(create));
  ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
  EXPECT_EQ(decoded.message->root().getBody().getCreateActor().getClassName(), "Counter");

  capnp::MallocMessageBuilder call;
  auto c = call.initRoot<wire::Envelope>().getBody().initActorCall();
  c.initActor().setOwner(7);
  c.setMethod("incr");
  c.initArgs(1);
  EXPECT_EQ(decode_error(call), "");
}

TEST(CodecActorTest, NilActorKeysAreRefused) {
  capnp::MallocMessageBuilder create;
  fill_spec(create.initRoot<wire::Envelope>().getBody().initCreateActor());
  create.getRoot<wire::Envelope>().getBody().getCreateActor().getActor().setOwner(0);
  EXPECT_EQ(decode_error(create), "nil actor key");

  capnp::MallocMessageBuilder call;
  call.initRoot<wire::Envelope>().getBody().initActorCall().setMethod("incr");
  EXPECT_EQ(decode_error(call), "nil actor key");

  capnp::MallocMessageBuilder stop;
  stop.initRoot<wire::Envelope>().getBody().initStopActor().setKill(true);
  EXPECT_EQ(decode_error(stop), "nil actor key");

  capnp::MallocMessageBuilder exited;
  exited.initRoot<wire::Envelope>().getBody().initActorExited().setReason("gone");
  EXPECT_EQ(decode_error(exited), "nil actor key");
}

TEST(CodecActorTest, BadActorSpecsAreRefused) {
  auto refused = [](auto mutate) {
    capnp::MallocMessageBuilder m;
    auto spec = m.initRoot<wire::Envelope>().getBody().initCreateActor();
    fill_spec(spec);
    mutate(spec);
    return decode_error(m);
  };
  EXPECT_EQ(refused([](auto s) { s.setMaxConcurrency(0); }), "bad max concurrency");
  EXPECT_EQ(refused([](auto s) { s.setMaxConcurrency(kMaxActorConcurrency + 1); }),
            "bad max concurrency");
  EXPECT_EQ(refused([](auto s) { s.setClassName(""); }), "bad actor class name");
  EXPECT_EQ(refused([](auto s) { s.setModuleHash("not-a-hash"); }), "bad module hash");
  EXPECT_EQ(refused([](auto s) { s.initArgs(kMaxTaskArgs + 1); }), "too many arguments");
  EXPECT_EQ(refused([](auto s) {
              auto sel = s.initPreferredLabels(1);
              sel[0].setKey("island");
              sel[0].setOp(static_cast<wire::SelectorOp>(9));
            }),
            "unknown selector operator");
  EXPECT_EQ(refused([](auto s) { s.initLabelSelector(1)[0].setKey(""); }), "bad selector key");
  EXPECT_EQ(refused([](auto s) {
              auto r = s.initResources(1);
              r[0].setName("CPU");
              r[0].setAmount(-1);
            }),
            "bad resource amount");
}

TEST(CodecActorTest, ActorFoundNeedsAKeyAndClassOnlyWhenFound) {
  capnp::MallocMessageBuilder missing;
  missing.initRoot<wire::Envelope>().getBody().initActorFound().setFound(false);
  EXPECT_EQ(decode_error(missing), "");

  capnp::MallocMessageBuilder found;
  auto f = found.initRoot<wire::Envelope>().getBody().initActorFound();
  f.setFound(true);
  f.setClassName("Counter");
  EXPECT_EQ(decode_error(found), "nil actor key");
  f.initActor().setOwner(3);
  EXPECT_EQ(decode_error(found), "");
}

TEST(CodecActorTest, ConstructActorIsValidatedForWorkers) {
  capnp::MallocMessageBuilder m;
  auto c = m.initRoot<wire::WorkerMessage>().initConstruct();
  c.setClassName("Counter");
  c.setMaxConcurrency(2);
  EXPECT_EQ(decode_worker_message(to_frame(m)).error, "");
  c.setMaxConcurrency(0);
  EXPECT_EQ(decode_worker_message(to_frame(m)).error, "bad max concurrency");
}

TEST(CodecActorTest, SharedValuesMustNameDistinctArguments) {
  for (auto [first, second, expected] : std::vector<std::tuple<int, int, std::string>>{
           {0, 1, ""}, {1, 1, "bad shared value index"}, {0, 2, "bad shared value index"}}) {
    capnp::MallocMessageBuilder m;
    auto e = m.initRoot<wire::WorkerMessage>().initExecute();
    e.setFunction("digest");
    e.initArgs(2);
    auto shared = e.initSharedArgs(2);
    shared[0].setIndex(static_cast<std::uint32_t>(first));
    shared[1].setIndex(static_cast<std::uint32_t>(second));
    EXPECT_EQ(decode_worker_message(to_frame(m)).error, expected) << first << ", " << second;
  }
  capnp::MallocMessageBuilder many;
  auto e = many.initRoot<wire::WorkerMessage>().initExecute();
  e.setFunction("digest");
  e.initArgs(kMaxSharedValues + 1);
  auto shared = e.initSharedArgs(kMaxSharedValues + 1);
  for (unsigned i = 0; i < shared.size(); ++i) shared[i].setIndex(i);
  EXPECT_EQ(decode_worker_message(to_frame(many)).error, "too many shared values");
}

}  // namespace
}  // namespace atl::transport
