// The codec on the object messages: task specs with ArgRefs, stored outcomes, fetch/push/pushed
// and FreeObjects. Well-formed ones pass; nil keys, bad indices and oversized texts are refused.
#include "tests/transport/codec_test_support.hpp"

namespace atl::transport {
namespace {

using namespace codec_test;

constexpr const char* kHash = "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef";

std::string decode_error(capnp::MallocMessageBuilder& m) {
  return decode_envelope(to_frame(m)).error;
}

wire::TaskSpec::Builder task_with_refs(capnp::MallocMessageBuilder& m, unsigned args,
                                       std::initializer_list<std::uint32_t> indices) {
  auto spec = m.initRoot<wire::Envelope>().getBody().initRunTask();
  spec.setModuleHash(kHash);
  spec.setModuleName("job");
  spec.setFunction("digest");
  spec.initArgs(args);
  spec.initResult().setOwner(7);
  spec.getResult().setSequence(3);
  auto refs = spec.initArgRefs(static_cast<unsigned>(indices.size()));
  unsigned i = 0;
  for (std::uint32_t index : indices) {
    refs[i].setIndex(index);
    refs[i].initObject().setOwner(7);
    refs[i].getObject().setSequence(1 + i);
    refs[i].setSize(1 << 20);
    refs[i++].setHolder("tcp://127.0.0.1:4000");
  }
  return spec;
}

TEST(CodecObjectTest, ATaskWithObjectArgumentsPasses) {
  capnp::MallocMessageBuilder m;
  task_with_refs(m, 3, {0, 2});
  auto decoded = decode_envelope(to_frame(m));
  ASSERT_TRUE(decoded.message.has_value()) << decoded.error;
  EXPECT_EQ(decoded.message->root().getBody().getRunTask().getArgRefs()[1].getIndex(), 2u);
}

TEST(CodecObjectTest, ActorArgumentsMustBeInRangeIncreasingKeyedAndNamed) {
  auto with_actors = [](capnp::MallocMessageBuilder& m, unsigned args,
                        std::initializer_list<std::uint32_t> indices) {
    auto list = task_with_refs(m, args, {}).initActorArgs(static_cast<unsigned>(indices.size()));
    unsigned i = 0;
    for (std::uint32_t index : indices) {
      list[i].setIndex(index);
      list[i].initActor().setOwner(9);
      list[i].setClassName("Counter");
      ++i;
    }
    return list;
  };
  capnp::MallocMessageBuilder good;
  with_actors(good, 3, {0, 2});
  EXPECT_EQ(decode_error(good), "");
  capnp::MallocMessageBuilder out_of_range;
  with_actors(out_of_range, 2, {2});
  EXPECT_EQ(decode_error(out_of_range), "bad actor argument index");
  capnp::MallocMessageBuilder repeated;
  with_actors(repeated, 3, {1, 1});
  EXPECT_EQ(decode_error(repeated), "bad actor argument index");
  capnp::MallocMessageBuilder nil;
  with_actors(nil, 1, {0})[0].getActor().setOwner(0);
  EXPECT_EQ(decode_error(nil), "nil actor key");
  capnp::MallocMessageBuilder unnamed;
  with_actors(unnamed, 1, {0})[0].setClassName("");
  EXPECT_NE(decode_error(unnamed), "");
}

TEST(CodecObjectTest, ArgRefIndicesMustBeInRangeIncreasingAndNamed) {
  capnp::MallocMessageBuilder out_of_range;
  task_with_refs(out_of_range, 2, {2});
  EXPECT_EQ(decode_error(out_of_range), "bad object argument index");

  capnp::MallocMessageBuilder repeated;
  task_with_refs(repeated, 3, {1, 1});
  EXPECT_EQ(decode_error(repeated), "bad object argument index");

  capnp::MallocMessageBuilder too_many;
  task_with_refs(too_many, 1, {0, 1});
  EXPECT_EQ(decode_error(too_many), "more object arguments than arguments");

  capnp::MallocMessageBuilder nil;
  task_with_refs(nil, 1, {0}).getArgRefs()[0].getObject().setOwner(0);
  EXPECT_EQ(decode_error(nil), "nil object key");

  capnp::MallocMessageBuilder nil_result;
  task_with_refs(nil_result, 1, {}).getResult().setOwner(0);
  EXPECT_EQ(decode_error(nil_result), "nil object key");

  capnp::MallocMessageBuilder long_holder;
  task_with_refs(long_holder, 1, {0}).getArgRefs()[0].setHolder(std::string(300, 'h'));
  EXPECT_NE(decode_error(long_holder), "");
}

TEST(CodecObjectTest, AStoredOutcomePassesWithAHolder) {
  capnp::MallocMessageBuilder m;
  auto done = m.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(4);
  done.getOutcome().setStored(5 << 20);
  done.setHolder("tcp://127.0.0.1:4000,ucx://127.0.0.1:4001");
  EXPECT_EQ(decode_error(m), "");
  done.setHolder(std::string(300, 'h'));
  EXPECT_NE(decode_error(m), "");
}

TEST(CodecObjectTest, PushMessagesNeedAKeyAPeerAndAnAttempt) {
  for (int which = 0; which < 3; ++which) {
    capnp::MallocMessageBuilder m;
    auto body = m.initRoot<wire::Envelope>().getBody();
    auto push = which == 0   ? body.initFetchObject()
                : which == 1 ? body.initPushObject()
                             : body.initObjectPushed();
    push.initObject().setOwner(9);
    push.setPeer("driver-00000000000000009");
    EXPECT_EQ(decode_error(m), "no fetch attempt") << which;  // 0 names no attempt
    push.setAttempt(~0ull);
    EXPECT_EQ(decode_error(m), "") << which;
    push.setError(std::string(100000, 'e'));
    EXPECT_NE(decode_error(m), "") << which;
    push.setError("");
    push.setPeer("");
    EXPECT_EQ(decode_error(m), "bad peer name") << which;
    push.setPeer("p");
    push.getObject().setOwner(0);
    EXPECT_EQ(decode_error(m), "nil object key") << which;
  }
}

TEST(CodecObjectTest, FreeObjectsIsBounded) {
  capnp::MallocMessageBuilder m;
  auto free = m.initRoot<wire::Envelope>().getBody().initFreeObjects();
  auto list = free.initObjects(2);
  list[0].setOwner(1);
  list[1].setOwner(1);
  EXPECT_EQ(decode_error(m), "");
  list[1].setOwner(0);
  EXPECT_EQ(decode_error(m), "nil object key");

  capnp::MallocMessageBuilder owner_only;
  owner_only.initRoot<wire::Envelope>().getBody().initFreeObjects().setOwner(5);
  EXPECT_EQ(decode_error(owner_only), "");

  capnp::MallocMessageBuilder huge;
  huge.initRoot<wire::Envelope>().getBody().initFreeObjects().initObjects(70000);
  EXPECT_EQ(decode_error(huge), "too many objects to free");
}

}  // namespace
}  // namespace atl::transport
