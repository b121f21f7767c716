// Writes valid frames of every control-plane message type (and of the worker socketpair's) into a
// directory, as a seed corpus for atoll_wire_fuzz: atoll_wire_seeds DIR
#include <capnp/message.h>

#include <array>
#include <cstddef>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <utility>
#include <vector>

#include "transport/auth.hpp"
#include "transport/codec.hpp"
#include "transport/schema/control.capnp.h"

namespace {

namespace wire = atl::wire;
using atl::transport::encode;

kj::ArrayPtr<const kj::byte> bytes(const std::array<std::byte, 32>& a) {
  return {reinterpret_cast<const kj::byte*>(a.data()), a.size()};
}

std::vector<std::byte> hello() {
  capnp::MallocMessageBuilder m;
  auto h = m.initRoot<wire::Handshake>().initHello();
  h.setProtocolVersion(wire::PROTOCOL_VERSION);
  h.setRole(wire::Role::NODE);
  h.setName("node-1");
  h.setClientNonce(bytes(atl::transport::make_nonce()));
  return encode(m);
}

std::vector<std::byte> challenge() {
  capnp::MallocMessageBuilder m;
  auto c = m.initRoot<wire::Handshake>().initChallenge();
  c.setProtocolVersion(wire::PROTOCOL_VERSION);
  auto client = atl::transport::make_nonce();
  auto server = atl::transport::make_nonce();
  c.setServerNonce(bytes(server));
  c.setServerProof(bytes(atl::transport::server_proof("seed-token-0123456789", client, server)));
  return encode(m);
}

std::vector<std::byte> proof() {
  capnp::MallocMessageBuilder m;
  m.initRoot<wire::Handshake>().initProof().setClientProof(bytes(atl::transport::make_nonce()));
  return encode(m);
}

std::vector<std::byte> welcome() {
  capnp::MallocMessageBuilder m;
  m.initRoot<wire::Handshake>().initWelcome().setSessionId(0x1234567890abcdefull);
  return encode(m);
}

std::vector<std::byte> refusal() {
  capnp::MallocMessageBuilder m;
  auto r = m.initRoot<wire::Handshake>().initRefusal();
  r.setReason(wire::RefusalReason::AUTHENTICATION_FAILED);
  r.setMessage("authentication failed");
  return encode(m);
}

std::vector<std::byte> ping() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(1);
  e.setTimeoutMs(1000);
  e.getBody().initPing().setSentNs(123456789);
  return encode(m);
}

std::vector<std::byte> pong() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(1);
  e.getBody().initPong().setSentNs(123456789);
  return encode(m);
}

std::vector<std::byte> error_reply() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(2);
  auto err = e.getBody().initError();
  err.setCategory(wire::ErrorCategory::TIMED_OUT);
  err.setMessage("the request timed out");
  return encode(m);
}

std::vector<std::byte> create_actor() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::Envelope>();
  e.setRequestId(3);
  auto a = e.getBody().initCreateActor();
  a.initActor().setOwner(0x1234);
  a.getActor().setSequence(9);
  a.setModuleHash("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  a.setModuleName("job");
  a.setClassName("Counter");
  a.setName("counter");
  a.setMaxConcurrency(2);
  auto sel = a.initLabelSelector(1);
  sel[0].setKey("island");
  sel[0].setOp(wire::SelectorOp::IN);
  sel[0].initValues(2).set(0, "eu-1");
  auto r = a.initResources(1);
  r[0].setName("CPU");
  r[0].setAmount(1);
  return encode(m);
}

std::vector<std::byte> actor_call() {
  capnp::MallocMessageBuilder m;
  auto c = m.initRoot<wire::Envelope>().getBody().initActorCall();
  c.initActor().setOwner(0x1234);
  c.setTaskId(17);
  c.setMethod("incr");
  auto args = c.initArgs(1);
  const kj::byte one[] = {0x01};
  args.set(0, capnp::Data::Reader(one, 1));
  return encode(m);
}

std::vector<std::byte> run_task_with_refs() {
  capnp::MallocMessageBuilder m;
  auto spec = m.initRoot<wire::Envelope>().getBody().initRunTask();
  spec.setTaskId(11);
  spec.setModuleHash("0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef");
  spec.setModuleName("job");
  spec.setFunction("digest");
  spec.initArgs(2);
  spec.initResult().setOwner(7);
  spec.getResult().setSequence(12);
  auto ref = spec.initArgRefs(1)[0];
  ref.setIndex(1);
  ref.initObject().setOwner(7);
  ref.getObject().setSequence(3);
  ref.setSize(1 << 20);
  ref.setHolder("tcp://127.0.0.1:4000");
  return encode(m);
}

std::vector<std::byte> stored_outcome() {
  capnp::MallocMessageBuilder m;
  auto done = m.initRoot<wire::Envelope>().getBody().initTaskFinished();
  done.setTaskId(11);
  done.setNode("eu-a");
  done.getOutcome().setStored(3 << 20);
  done.setHolder("tcp://127.0.0.1:4000");
  return encode(m);
}

std::vector<std::byte> fetch_object() {
  capnp::MallocMessageBuilder m;
  auto f = m.initRoot<wire::Envelope>().getBody().initFetchObject();
  f.initObject().setOwner(7);
  f.getObject().setSequence(3);
  f.setPeer("driver-0000000000000007");
  f.setAttempt(1);
  return encode(m);
}

std::vector<std::byte> object_pushed() {
  capnp::MallocMessageBuilder m;
  auto p = m.initRoot<wire::Envelope>().getBody().initObjectPushed();
  p.initObject().setOwner(7);
  p.getObject().setSequence(3);
  p.setPeer("driver-0000000000000007");
  p.setAttempt(2);
  p.setError("the reader opened no data channel to 'eu-a' within 30 s");
  return encode(m);
}

std::vector<std::byte> free_objects() {
  capnp::MallocMessageBuilder m;
  auto list = m.initRoot<wire::Envelope>().getBody().initFreeObjects().initObjects(2);
  list[0].setOwner(7);
  list[0].setSequence(3);
  list[1].setOwner(7);
  list[1].setSequence(4);
  return encode(m);
}

// Worker socketpair messages (decode_worker_message): a task with a shared argument, a shared
// result, a release.
std::vector<std::byte> worker_execute_shared() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::WorkerMessage>().initExecute();
  e.setTaskId(5);
  e.setFunction("digest");
  e.initArgs(2).set(1, capnp::Data::Reader(reinterpret_cast<const kj::byte*>("\x2a"), 1));
  auto v = e.initSharedArgs(1)[0];
  v.setIndex(0);
  v.setOffset(4096);
  v.setSize(3 << 20);
  v.setLend(9);
  return encode(m);
}

std::vector<std::byte> worker_execute_passed() {
  capnp::MallocMessageBuilder m;
  auto e = m.initRoot<wire::WorkerMessage>().initExecute();
  e.setTaskId(6);
  e.setFunction("bump");
  e.initArgs(2);
  auto r = e.initObjectRefs(1)[0];
  r.setIndex(0);
  r.initObject().setOwner(7);
  r.setSize(3);
  r.setHolder("tcp://127.0.0.1:4000");
  r.setByReference(true);
  auto a = e.initActorArgs(1)[0];
  a.setIndex(1);
  a.initActor().setOwner(7);
  a.setClassName("Counter");
  return encode(m);
}

std::vector<std::byte> worker_shared_outcome() {
  capnp::MallocMessageBuilder m;
  auto o = m.initRoot<wire::WorkerMessage>().initOutcome();
  o.setTaskId(5);
  o.initShared().setSize(3 << 20);
  return encode(m);
}

std::vector<std::byte> worker_released() {
  capnp::MallocMessageBuilder m;
  m.initRoot<wire::WorkerMessage>().setReleased(9);
  return encode(m);
}

std::vector<std::byte> multi_segment_hello() {
  capnp::MallocMessageBuilder m(1, capnp::AllocationStrategy::FIXED_SIZE);
  auto h = m.initRoot<wire::Handshake>().initHello();
  h.setRole(wire::Role::DRIVER);
  h.setName("driver-with-a-far-pointer");
  h.setClientNonce(bytes(atl::transport::make_nonce()));
  return encode(m);
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: %s DIR\n", argv[0]);
    return 2;
  }
  const std::filesystem::path dir = argv[1];
  std::filesystem::create_directories(dir);
  const std::vector<std::pair<std::string, std::vector<std::byte>>> seeds = {
      {"hello", hello()},
      {"challenge", challenge()},
      {"proof", proof()},
      {"welcome", welcome()},
      {"refusal", refusal()},
      {"ping", ping()},
      {"pong", pong()},
      {"error", error_reply()},
      {"create-actor", create_actor()},
      {"actor-call", actor_call()},
      {"run-task-with-refs", run_task_with_refs()},
      {"stored-outcome", stored_outcome()},
      {"fetch-object", fetch_object()},
      {"object-pushed", object_pushed()},
      {"free-objects", free_objects()},
      {"hello-multi-segment", multi_segment_hello()},
      {"worker-execute-shared", worker_execute_shared()},
      {"worker-shared-outcome", worker_shared_outcome()},
      {"worker-execute-passed", worker_execute_passed()},
      {"worker-released", worker_released()},
  };
  std::vector<std::byte> stream;  // a whole handshake and some traffic on one connection
  for (const auto& [name, frame] : seeds) {
    std::ofstream(dir / ("seed-" + name), std::ios::binary)
        .write(reinterpret_cast<const char*>(frame.data()),
               static_cast<std::streamsize>(frame.size()));
    stream.insert(stream.end(), frame.begin(), frame.end());
  }
  std::ofstream(dir / "seed-stream", std::ios::binary)
      .write(reinterpret_cast<const char*>(stream.data()),
             static_cast<std::streamsize>(stream.size()));
  std::printf("wrote %zu seeds to %s\n", seeds.size() + 1, dir.c_str());
  return 0;
}
