// The decoder's schema-driven pointer check (transport/pointer_check.*): every pointer of an
// accepted message, however deep, can be read through the generated accessors without throwing.
// The check is exercised through decode_envelope / decode_worker_message, on messages whose nested
// pointers (list elements, structs inside structs, texts inside lists) are replaced one word at a
// time by pointers of the wrong kind or out of bounds.
#include "transport/pointer_check.hpp"

#include <gtest/gtest.h>

#include "tests/transport/codec_test_support.hpp"
#include "tests/transport/wire_walk.hpp"
#include "transport/codec.hpp"

namespace atl::transport {
namespace {

using namespace codec_test;

constexpr ElementSize kBit = static_cast<ElementSize>(1);

std::vector<std::uint64_t> flat_words(capnp::MessageBuilder& m) {
  Frame frame = to_frame(m);
  return frame.words;
}

std::vector<std::uint64_t> deep_envelope() {
  capnp::MallocMessageBuilder m;
  auto spec = m.initRoot<wire::Envelope>().getBody().initRunTask();
  spec.setTaskId(11);
  spec.setModuleHash("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  spec.setModuleName("job");
  spec.setFunction("digest");
  auto args = spec.initArgs(2);
  const kj::byte one[] = {0x01, 0x02};
  args.set(0, capnp::Data::Reader(one, 2));
  spec.initResult().setOwner(7);
  auto refs = spec.initArgRefs(2);
  for (unsigned i = 0; i < 2; ++i) {
    refs[i].setIndex(i);
    refs[i].initObject().setOwner(7 + i);
    refs[i].setSize(1 << 20);
    refs[i].setHolder("tcp://127.0.0.1:4000");
  }
  auto sel = spec.initLabelSelector(1);
  sel[0].setKey("island");
  sel[0].setOp(wire::SelectorOp::IN);
  auto values = sel[0].initValues(2);
  values.set(0, "eu-1");
  values.set(1, "us-2");
  return flat_words(m);
}

std::vector<std::uint64_t> deep_worker_message() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::WorkerMessage>().initExecute();
  e.setTaskId(6);
  e.setFunction("bump");
  e.initArgs(3);
  auto r = e.initObjectRefs(1)[0];
  r.setIndex(0);
  r.initObject().setOwner(7);
  r.setHolder("tcp://127.0.0.1:4000");
  auto a = e.initActorArgs(1)[0];
  a.setIndex(1);
  a.initActor().setOwner(7);
  a.setClassName("Counter");
  auto v = e.initSharedArgs(1)[0];
  v.setIndex(2);
  v.setSize(3 << 20);
  return flat_words(m);
}

// Replaces each word after the segment table with each bad pointer in turn; every message the
// decoder accepts must read completely. Returns how many mutants were rejected.
template <class Decode>
int rejected_mutants(const std::vector<std::uint64_t>& words, Decode decode) {
  int rejected = 0;
  for (std::size_t at = 1; at < words.size(); ++at) {
    const auto back = -static_cast<std::int32_t>(at);  // to the segment's first word
    for (std::uint64_t bad : {list_ptr(back, kByte, 0), struct_ptr(back, 1, 0),
                              list_ptr(back, kBit, 8), struct_ptr(1000, 1, 0)}) {
      auto mutant = words;
      mutant[at] = bad;
      auto r = decode(words_frame(mutant));
      if (!r.message) {
        ++rejected;
        continue;
      }
      EXPECT_NO_THROW(wire_test::walk_message(r.message->root()))
          << "accepted a message it cannot read: word " << at << " = " << std::hex << bad;
    }
  }
  return rejected;
}

std::vector<std::uint64_t> hello_handshake() {
  capnp::MallocMessageBuilder m;
  build_hello(m, make_nonce(), "node-a");
  return flat_words(m);
}

// The plan alone (no validate()), on every mutant: whenever it accepts a message, a full read of it
// through the schema must not throw. Returns how many mutants it refused.
template <class Root>
int plan_refusals(const std::vector<std::uint64_t>& words) {
  PointerPlan plan(capnp::Schema::from<Root>());
  int refused = 0;
  for (std::size_t at = 1; at < words.size(); ++at) {
    const auto back = -static_cast<std::int32_t>(at);
    for (std::uint64_t bad :
         {list_ptr(back, kByte, 0), struct_ptr(back, 1, 0), list_ptr(back, kBit, 8),
          list_ptr(back, kPointer, 1), struct_ptr(1000, 1, 0)}) {
      auto mutant = words;
      mutant[at] = bad;
      kj::ArrayPtr<const capnp::word> flat(reinterpret_cast<const capnp::word*>(mutant.data()),
                                           mutant.size());
      capnp::ReaderOptions options;
      options.traversalLimitInWords = mutant.size() * 4 + 64;
      bool accepted = false;
      try {
        capnp::FlatArrayMessageReader reader(flat, options);
        (void)reader.getRoot<Root>().totalSize();
        plan.check(capnp::AnyStruct::Reader(reader.getRoot<Root>()));
        accepted = true;
      } catch (const kj::Exception&) {
        ++refused;
      }
      if (!accepted) continue;
      capnp::FlatArrayMessageReader again(flat, options);
      EXPECT_NO_THROW(wire_test::walk_message(again.getRoot<Root>()))
          << "the plan accepted a pointer the schema cannot read: word " << at << " = " << std::hex
          << bad;
    }
  }
  return refused;
}

TEST(PointerCheckTest, WhatThePlanAcceptsReadsCompletely) {
  EXPECT_GT(plan_refusals<wire::Envelope>(deep_envelope()), 0);
  EXPECT_GT(plan_refusals<wire::WorkerMessage>(deep_worker_message()), 0);
  EXPECT_GT(plan_refusals<wire::Handshake>(hello_handshake()), 0);
}

TEST(PointerCheckTest, PlansCompileForEveryRootType) {
  EXPECT_NO_THROW(PointerPlan(capnp::Schema::from<wire::Handshake>()));
  EXPECT_NO_THROW(PointerPlan(capnp::Schema::from<wire::Envelope>()));
  EXPECT_NO_THROW(PointerPlan(capnp::Schema::from<wire::WorkerMessage>()));
}

TEST(PointerCheckTest, WellFormedDeepMessagesAreAccepted) {
  auto e = decode_envelope(words_frame(deep_envelope()));
  ASSERT_TRUE(e.message.has_value()) << e.error;
  EXPECT_EQ(e.message->root().getBody().getRunTask().getArgRefs()[1].getObject().getOwner(), 8u);
  auto w = decode_worker_message(words_frame(deep_worker_message()));
  ASSERT_TRUE(w.message.has_value()) << w.error;
  EXPECT_EQ(w.message->root().getExecute().getActorArgs()[0].getClassName(), "Counter");
}

TEST(PointerCheckTest, NestedMistypedPointersAreRejected) {
  EXPECT_GT(
      rejected_mutants(deep_envelope(), [](Frame f) { return decode_envelope(std::move(f)); }), 0);
  EXPECT_GT(rejected_mutants(deep_worker_message(),
                             [](Frame f) { return decode_worker_message(std::move(f)); }),
            0);
}

TEST(PointerCheckTest, BitListWhereStructListBelongsThrows) {
  // Execute.objectRefs as a bit list: AnyList takes it, the generated reader would not.
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::WorkerMessage>().initExecute();
  e.setFunction("f");
  auto ptrs = capnp::AnyStruct::Builder(kj::mv(e)).getPointerSection();
  const auto slot = capnp::Schema::from<wire::ExecuteTask>()
                        .getFieldByName("objectRefs")
                        .getProto()
                        .getSlot()
                        .getOffset();
  ptrs[slot].initAs<capnp::List<bool>>(8);
  PointerPlan plan(capnp::Schema::from<wire::WorkerMessage>());
  EXPECT_THROW(plan.check(capnp::AnyStruct::Reader(m.getRoot<wire::WorkerMessage>().asReader())),
               kj::Exception);
}

}  // namespace
}  // namespace atl::transport
