#include "transport/codec.hpp"

#include <capnp/schema.h>
#include <kj/exception.h>

#include <cmath>
#include <limits>

#include "transport/auth.hpp"
#include "transport/pointer_check.hpp"

namespace atl::transport {

namespace {

// Each validator returns an empty string when the message is acceptable.
std::string check_data(capnp::Data::Reader d, std::size_t size, const char* what) {
  return d.size() == size ? std::string() : std::string(what) + " has the wrong length";
}

std::string check_text(capnp::Text::Reader t, std::size_t max, const char* what) {
  return t.size() <= max ? std::string() : std::string(what) + " is too long";
}

std::string validate(wire::Handshake::Reader h) {
  switch (h.which()) {
    case wire::Handshake::HELLO: {
      auto m = h.getHello();
      auto role = m.getRole();
      if (role != wire::Role::DRIVER && role != wire::Role::NODE && role != wire::Role::WORKER)
        return "unknown role";
      if (auto e = check_text(m.getName(), kMaxNameBytes, "name"); !e.empty()) return e;
      return check_data(m.getClientNonce(), kNonceBytes, "client nonce");
    }
    case wire::Handshake::CHALLENGE: {
      auto m = h.getChallenge();
      if (auto e = check_data(m.getServerNonce(), kNonceBytes, "server nonce"); !e.empty())
        return e;
      return check_data(m.getServerProof(), kProofBytes, "server proof");
    }
    case wire::Handshake::PROOF:
      return check_data(h.getProof().getClientProof(), kProofBytes, "client proof");
    case wire::Handshake::WELCOME:
      return check_text(h.getWelcome().getDataAddress(), kMaxNameBytes, "data address");
    case wire::Handshake::REFUSAL: {
      auto m = h.getRefusal();
      auto r = m.getReason();
      if (r != wire::RefusalReason::VERSION_MISMATCH &&
          r != wire::RefusalReason::AUTHENTICATION_FAILED && r != wire::RefusalReason::MALFORMED)
        return "unknown refusal reason";
      return check_text(m.getMessage(), kMaxMessageTextBytes, "refusal message");
    }
  }
  return "unknown handshake message";
}

constexpr std::size_t kMaxListItems = 64;
constexpr std::size_t kMaxNodes = 100000;
constexpr std::size_t kMaxFreedObjects = 65536;

std::string check_resources(capnp::List<wire::Resource>::Reader list) {
  if (list.size() > kMaxListItems) return "too many resources";
  for (auto r : list) {
    if (r.getName().size() == 0 || r.getName().size() > 64) return "bad resource name";
    double a = r.getAmount();
    if (!std::isfinite(a) || a < 0 || a > 1e19) return "bad resource amount";
  }
  return {};
}

std::string check_labels(capnp::List<wire::Label>::Reader list) {
  if (list.size() > kMaxListItems) return "too many labels";
  for (auto l : list) {
    if (l.getKey().size() == 0 || l.getKey().size() > 64) return "bad label key";
    if (l.getValue().size() > kMaxNameBytes) return "label value too long";
  }
  return {};
}

std::string validate(wire::RegisterNode::Reader m) {
  if (m.getIsland().size() == 0 || m.getIsland().size() > kMaxNameBytes) return "bad island";
  if (auto e = check_resources(m.getResources()); !e.empty()) return e;
  if (auto e = check_labels(m.getLabels()); !e.empty()) return e;
  if (auto e = check_text(m.getGpuModel(), 64, "gpu model"); !e.empty()) return e;
  if (auto e = check_text(m.getDataAddress(), kMaxNameBytes, "data address"); !e.empty()) return e;
  if (auto e = check_text(m.getDataName(), kMaxNameBytes, "data name"); !e.empty()) return e;
  return check_text(m.getHostname(), kMaxNameBytes, "hostname");
}

std::string validate(wire::ClusterStatus::Reader m) {
  if (m.getNodes().size() > kMaxNodes) return "too many nodes";
  for (auto n : m.getNodes()) {
    auto l = n.getLiveness();
    if (l != wire::NodeLiveness::ALIVE && l != wire::NodeLiveness::SUSPECT &&
        l != wire::NodeLiveness::DEAD)
      return "unknown liveness";
    for (auto t : {n.getName(), n.getIsland(), n.getAddress(), n.getHostname()})
      if (t.size() > kMaxNameBytes) return "node text too long";
    if (auto e = check_text(n.getGpuModel(), 64, "gpu model"); !e.empty()) return e;
    if (auto e = check_resources(n.getResources()); !e.empty()) return e;
    if (auto e = check_resources(n.getAvailable()); !e.empty()) return e;
    if (auto e = check_labels(n.getLabels()); !e.empty()) return e;
  }
  return {};
}

bool is_sha256_hex(capnp::Text::Reader t) {
  if (t.size() != 64) return false;
  for (char c : t)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

std::string check_selectors(capnp::List<wire::Selector>::Reader list) {
  if (list.size() > kMaxListItems) return "too many label selectors";
  for (auto sel : list) {
    if (sel.getKey().size() == 0 || sel.getKey().size() > 64) return "bad selector key";
    if (static_cast<unsigned>(sel.getOp()) >
        static_cast<unsigned>(wire::SelectorOp::DOES_NOT_EXIST))
      return "unknown selector operator";
    if (sel.getValues().size() > kMaxListItems) return "too many selector values";
    for (auto v : sel.getValues())
      if (v.size() > kMaxNameBytes) return "selector value too long";
  }
  return {};
}

std::string check_name(capnp::Text::Reader t, const char* what) {
  if (t.size() == 0 || t.size() > kMaxNameBytes) return std::string("bad ") + what;
  return {};
}

// Object keys name an owner (a driver's random id, never 0).
std::string check_object_key(wire::ObjectKey::Reader k) {
  return k.getOwner() != 0 ? std::string() : "nil object key";
}

std::string check_arg_refs(capnp::List<wire::ArgRef>::Reader refs, unsigned args) {
  if (refs.size() > args) return "more object arguments than arguments";
  std::uint32_t previous = 0;
  for (unsigned i = 0; i < refs.size(); ++i) {
    auto r = refs[i];
    // Strictly increasing indices: each argument is referred to at most once.
    if (r.getIndex() >= args || (i > 0 && r.getIndex() <= previous))
      return "bad object argument index";
    previous = r.getIndex();
    if (auto e = check_object_key(r.getObject()); !e.empty()) return e;
    if (auto e = check_text(r.getHolder(), kMaxNameBytes, "holder address"); !e.empty()) return e;
    if (auto e = check_text(r.getHolderName(), kMaxNameBytes, "holder name"); !e.empty()) return e;
  }
  return {};
}

// Actor arguments name distinct arguments in increasing order, by key and class.
constexpr unsigned kMaxActorMethods = 4096;

std::string check_actor_args(capnp::List<wire::ActorArg>::Reader actors, unsigned args) {
  if (actors.size() > args) return "more actor arguments than arguments";
  for (unsigned i = 0; i < actors.size(); ++i) {
    auto a = actors[i];
    if (a.getIndex() >= args || (i > 0 && a.getIndex() <= actors[i - 1].getIndex()))
      return "bad actor argument index";
    if (a.getActor().getOwner() == 0) return "nil actor key";
    if (auto e = check_name(a.getClassName(), "actor class name"); !e.empty()) return e;
    if (a.getCode().size() > 0 && !is_sha256_hex(a.getCode())) return "bad actor class code hash";
    if (a.getMethods().size() > kMaxActorMethods) return "too many actor methods";
    for (auto m : a.getMethods())
      if (auto e = check_name(m, "method name"); !e.empty()) return e;
  }
  return {};
}

// The code a task or actor runs: a C++ module, a binding's code, or both (a Python job that also
// loaded a C++ module).
std::string check_code(capnp::Text::Reader module_hash, capnp::Text::Reader module_name,
                       capnp::Text::Reader code) {
  if (code.size() > 0) {
    if (!is_sha256_hex(code)) return "bad code hash";
    if (module_hash.size() == 0 && module_name.size() == 0) return {};
  }
  if (!is_sha256_hex(module_hash)) return "bad module hash";
  return check_name(module_name, "module name");
}

// A worker's code reference: unset, or a hash and a path.
std::string check_code_ref(wire::CodeRef::Reader code) {
  if (code.getHash().size() == 0 && code.getPath().size() == 0) return {};
  if (!is_sha256_hex(code.getHash())) return "bad code hash";
  if (code.getPath().size() == 0 || code.getPath().size() > 4096) return "bad code path";
  return {};
}

std::string check_failure(wire::TaskFailure::Reader f) {
  if (auto e = check_text(f.getRemoteType(), kMaxNameBytes, "remote type"); !e.empty()) return e;
  if (auto e = check_text(f.getMessage(), kMaxMessageTextBytes, "failure message"); !e.empty())
    return e;
  if (auto e = check_text(f.getTraceback(), kMaxMessageTextBytes, "traceback"); !e.empty())
    return e;
  return f.getDetails().size() <= kMaxFailureDetailsBytes ? std::string()
                                                          : "failure details too long";
}

std::string validate(wire::TaskSpec::Reader t) {
  if (auto e = check_code(t.getModuleHash(), t.getModuleName(), t.getCode()); !e.empty()) return e;
  if (auto e = check_name(t.getFunction(), "function name"); !e.empty()) return e;
  if (t.getArgs().size() > kMaxTaskArgs) return "too many arguments";
  if (t.getMaxRetries() > 1000) return "too many retries";
  if (auto e = check_text(t.getName(), kMaxNameBytes, "task name"); !e.empty()) return e;
  if (auto e = check_selectors(t.getLabelSelector()); !e.empty()) return e;
  if (auto e = check_selectors(t.getPreferredLabels()); !e.empty()) return e;
  if (t.hasResult())
    if (auto e = check_object_key(t.getResult()); !e.empty()) return e;
  if (auto e = check_arg_refs(t.getArgRefs(), t.getArgs().size()); !e.empty()) return e;
  if (auto e = check_actor_args(t.getActorArgs(), t.getArgs().size()); !e.empty()) return e;
  return check_resources(t.getResources());
}

// Actor keys name an owner (a driver's random id, never 0): a nil key would read as "no actor".
std::string check_actor_key(wire::ActorKey::Reader k) {
  return k.getOwner() != 0 ? std::string() : "nil actor key";
}

std::string validate(wire::ActorSpec::Reader a) {
  if (auto e = check_actor_key(a.getActor()); !e.empty()) return e;
  if (auto e = check_code(a.getModuleHash(), a.getModuleName(), a.getCode()); !e.empty()) return e;
  if (auto e = check_name(a.getClassName(), "actor class name"); !e.empty()) return e;
  if (a.getArgs().size() > kMaxTaskArgs) return "too many arguments";
  if (auto e = check_text(a.getName(), kMaxNameBytes, "actor name"); !e.empty()) return e;
  if (a.getMaxConcurrency() < 1 || a.getMaxConcurrency() > kMaxActorConcurrency)
    return "bad max concurrency";
  if (a.getMaxRestarts() < -1) return "bad max restarts";
  if (auto e = check_selectors(a.getLabelSelector()); !e.empty()) return e;
  if (auto e = check_selectors(a.getPreferredLabels()); !e.empty()) return e;
  if (auto e = check_arg_refs(a.getArgRefs(), a.getArgs().size()); !e.empty()) return e;
  if (auto e = check_actor_args(a.getActorArgs(), a.getArgs().size()); !e.empty()) return e;
  return check_resources(a.getResources());
}

std::string validate(wire::ActorCall::Reader c) {
  if (auto e = check_actor_key(c.getActor()); !e.empty()) return e;
  if (auto e = check_name(c.getMethod(), "method name"); !e.empty()) return e;
  if (c.getArgs().size() > kMaxTaskArgs) return "too many arguments";
  if (c.hasResult())
    if (auto e = check_object_key(c.getResult()); !e.empty()) return e;
  if (auto e = check_actor_args(c.getActorArgs(), c.getArgs().size()); !e.empty()) return e;
  return check_arg_refs(c.getArgRefs(), c.getArgs().size());
}

std::string validate(wire::TaskFinished::Reader t) {
  if (auto e = check_text(t.getNode(), kMaxNameBytes, "node"); !e.empty()) return e;
  if (auto e = check_text(t.getHolder(), kMaxNameBytes, "holder address"); !e.empty()) return e;
  if (auto e = check_text(t.getHolderName(), kMaxNameBytes, "holder name"); !e.empty()) return e;
  auto o = t.getOutcome();
  if (o.which() == wire::TaskFinished::Outcome::VALUE ||
      o.which() == wire::TaskFinished::Outcome::STORED)
    return {};
  if (o.which() != wire::TaskFinished::Outcome::FAILURE) return "unknown outcome";
  return check_failure(o.getFailure());
}

std::string validate(wire::Envelope::Reader e) {
  auto body = e.getBody();
  switch (body.which()) {
    case wire::Envelope::Body::PING:
      (void)body.getPing().getSentNs();
      return {};
    case wire::Envelope::Body::PONG:
      (void)body.getPong().getSentNs();
      return {};
    case wire::Envelope::Body::ERROR: {
      auto m = body.getError();
      if (static_cast<unsigned>(m.getCategory()) >
          static_cast<unsigned>(wire::ErrorCategory::UNIMPLEMENTED))
        return "unknown error category";
      return check_text(m.getMessage(), kMaxMessageTextBytes, "error message");
    }
    case wire::Envelope::Body::REGISTER_NODE:
      return validate(body.getRegisterNode());
    case wire::Envelope::Body::NODE_REGISTERED:
    case wire::Envelope::Body::HEARTBEAT:
    case wire::Envelope::Body::STATUS_REQUEST:
      return {};
    case wire::Envelope::Body::CLUSTER_STATUS:
      return validate(body.getClusterStatus());
    case wire::Envelope::Body::UPLOAD_MODULE:
    case wire::Envelope::Body::MODULE_BYTES: {
      auto m = body.which() == wire::Envelope::Body::UPLOAD_MODULE ? body.getUploadModule()
                                                                   : body.getModuleBytes();
      return is_sha256_hex(m.getHash()) ? std::string() : "bad module hash";
    }
    case wire::Envelope::Body::MODULE_STORED:
      return is_sha256_hex(body.getModuleStored().getHash()) ? std::string() : "bad module hash";
    case wire::Envelope::Body::FETCH_MODULE:
      return is_sha256_hex(body.getFetchModule().getHash()) ? std::string() : "bad module hash";
    case wire::Envelope::Body::SUBMIT_TASK:
      return validate(body.getSubmitTask());
    case wire::Envelope::Body::RUN_TASK:
      return validate(body.getRunTask());
    case wire::Envelope::Body::TASK_FINISHED:
      return validate(body.getTaskFinished());
    case wire::Envelope::Body::CREATE_ACTOR:
      return validate(body.getCreateActor());
    case wire::Envelope::Body::START_ACTOR:
      return validate(body.getStartActor());
    case wire::Envelope::Body::ACTOR_CALL:
      return validate(body.getActorCall());
    case wire::Envelope::Body::STOP_ACTOR:
      return check_actor_key(body.getStopActor().getActor());
    case wire::Envelope::Body::ACTOR_EXITED:
      if (auto e = check_actor_key(body.getActorExited().getActor()); !e.empty()) return e;
      return check_text(body.getActorExited().getReason(), kMaxMessageTextBytes, "exit reason");
    case wire::Envelope::Body::LOOKUP_ACTOR:
      return check_name(body.getLookupActor().getName(), "actor name");
    case wire::Envelope::Body::ACTOR_FOUND: {
      auto f = body.getActorFound();
      if (!f.getFound()) return {};
      if (auto e = check_actor_key(f.getActor()); !e.empty()) return e;
      return check_name(f.getClassName(), "actor class name");
    }
    case wire::Envelope::Body::FETCH_OBJECT:
    case wire::Envelope::Body::PUSH_OBJECT:
    case wire::Envelope::Body::OBJECT_PUSHED: {
      auto p = body.which() == wire::Envelope::Body::FETCH_OBJECT  ? body.getFetchObject()
               : body.which() == wire::Envelope::Body::PUSH_OBJECT ? body.getPushObject()
                                                                   : body.getObjectPushed();
      if (auto e = check_object_key(p.getObject()); !e.empty()) return e;
      if (auto e = check_name(p.getPeer(), "peer name"); !e.empty()) return e;
      if (p.getAttempt() == 0) return "no fetch attempt";
      return check_text(p.getError(), kMaxMessageTextBytes, "push error");
    }
    case wire::Envelope::Body::FREE_OBJECTS: {
      auto f = body.getFreeObjects();
      if (f.getObjects().size() > kMaxFreedObjects) return "too many objects to free";
      for (auto k : f.getObjects())
        if (auto e = check_object_key(k); !e.empty()) return e;
      return {};
    }
  }
  return "unknown message type";
}

// Shared values name distinct arguments, each left empty inline.
std::string check_shared_values(capnp::List<wire::SharedValue>::Reader shared,
                                unsigned argument_count) {
  if (shared.size() > kMaxSharedValues) return "too many shared values";
  std::vector<bool> seen(argument_count, false);
  for (auto v : shared) {
    if (v.getIndex() >= argument_count || seen[v.getIndex()]) return "bad shared value index";
    seen[v.getIndex()] = true;
  }
  return {};
}

std::string validate(wire::WorkerMessage::Reader m) {
  switch (m.which()) {
    case wire::WorkerMessage::READY:
      return {};
    case wire::WorkerMessage::EXECUTE: {
      auto e = m.getExecute();
      if (e.getFunction().size() == 0 || e.getFunction().size() > kMaxNameBytes)
        return "bad function name";
      if (e.getArgs().size() > kMaxTaskArgs) return "too many arguments";
      if (auto error = check_arg_refs(e.getObjectRefs(), e.getArgs().size()); !error.empty())
        return error;
      if (auto error = check_actor_args(e.getActorArgs(), e.getArgs().size()); !error.empty())
        return error;
      if (auto error = check_code_ref(e.getCode()); !error.empty()) return error;
      return check_shared_values(e.getSharedArgs(), e.getArgs().size());
    }
    case wire::WorkerMessage::OUTCOME: {
      auto o = m.getOutcome();
      if (o.which() == wire::TaskOutcome::VALUE) return {};
      if (o.which() == wire::TaskOutcome::SHARED) return {};
      if (o.which() != wire::TaskOutcome::FAILURE) return "unknown outcome";
      return check_failure(o.getFailure());
    }
    case wire::WorkerMessage::CONSTRUCT: {
      auto c = m.getConstruct();
      if (auto e = check_name(c.getClassName(), "actor class name"); !e.empty()) return e;
      if (c.getMaxConcurrency() < 1 || c.getMaxConcurrency() > kMaxActorConcurrency)
        return "bad max concurrency";
      if (c.getArgs().size() > kMaxTaskArgs) return "too many arguments";
      if (auto e = check_arg_refs(c.getObjectRefs(), c.getArgs().size()); !e.empty()) return e;
      if (auto e = check_actor_args(c.getActorArgs(), c.getArgs().size()); !e.empty()) return e;
      if (auto e = check_code_ref(c.getCode()); !e.empty()) return e;
      return check_shared_values(c.getSharedArgs(), c.getArgs().size());
    }
    case wire::WorkerMessage::RELEASED:
      return {};
    case wire::WorkerMessage::CLUSTER: {
      auto c = m.getCluster();
      if (auto e = check_text(c.getHeadAddress(), kMaxNameBytes, "head address"); !e.empty())
        return e;
      if (auto e = check_text(c.getDataHost(), kMaxNameBytes, "data host"); !e.empty()) return e;
      if (auto e = check_text(c.getDataAdvertiseHost(), kMaxNameBytes, "data host"); !e.empty())
        return e;
      return check_text(c.getToken(), kMaxNameBytes, "token");
    }
  }
  return "unknown worker message";
}

template <class Root>
DecodeResult<Root> decode_as(Frame frame) {
  DecodeResult<Root> result;
  capnp::ReaderOptions options;
  // Reading may visit at most 4x the words the frame holds: no amplification by shared pointers.
  options.traversalLimitInWords = frame.words.size() * 4 + 64;
  options.nestingLimit = kNestingLimit;
  try {
    kj::ArrayPtr<const capnp::word> words(reinterpret_cast<const capnp::word*>(frame.words.data()),
                                          frame.words.size());
    auto reader = std::make_unique<capnp::FlatArrayMessageReader>(words, options);
    if (reader->getEnd() != words.end()) {
      result.error = "trailing bytes after the message";
      return result;
    }
    // Follow every pointer once (throws on any out-of-bounds or malformed one), so no member the
    // field checks below do not read can carry a bad pointer into an accepted message.
    (void)reader->getRoot<Root>().totalSize();
    // Compiled once per message type from the generated schema: a constant, not a registry.
    static const PointerPlan plan(capnp::Schema::from<Root>());
    plan.check(capnp::AnyStruct::Reader(reader->getRoot<Root>()));
    result.error = validate(reader->getRoot<Root>());
    if (result.error.empty()) {
      // Validation walked every field the runtime reads under the strict limit. The reader handed
      // out gets no traversal budget, so reading an accepted message again never throws.
      capnp::ReaderOptions unlimited;
      unlimited.traversalLimitInWords = std::numeric_limits<std::uint64_t>::max();
      unlimited.nestingLimit = kNestingLimit;
      reader = std::make_unique<capnp::FlatArrayMessageReader>(words, unlimited);
      result.message.emplace(std::move(frame), std::move(reader));
    }
  } catch (const kj::Exception& e) {
    result.error = "malformed message: " + std::string(e.getDescription().cStr());
  }
  return result;
}

}  // namespace

DecodeResult<wire::Handshake> decode_handshake(Frame frame) {
  return decode_as<wire::Handshake>(std::move(frame));
}

DecodeResult<wire::Envelope> decode_envelope(Frame frame) {
  return decode_as<wire::Envelope>(std::move(frame));
}

DecodeResult<wire::WorkerMessage> decode_worker_message(Frame frame) {
  return decode_as<wire::WorkerMessage>(std::move(frame));
}

std::vector<std::byte> encode(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  auto bytes = flat.asBytes();
  return encode_frame({reinterpret_cast<const std::byte*>(bytes.begin()), bytes.size()});
}

}  // namespace atl::transport
