#include "runtime/worker_values.hpp"

#include <unistd.h>

#include <cstring>

#include "atoll/errors.hpp"
#include "runtime/shared_memory.hpp"
#include "runtime/wire_values.hpp"
#include "transport/codec.hpp"

namespace atl::runtime {

std::uint64_t LentValues::lend(Buffer value) {
  std::lock_guard lock(mu_);
  std::uint64_t id = next_++;
  lent_.emplace(id, std::move(value));
  return id;
}

void LentValues::released(std::uint64_t id) {
  Buffer value;  // dropped outside the lock: a pooled block goes back to its pool
  std::lock_guard lock(mu_);
  if (auto it = lent_.find(id); it != lent_.end()) {
    value = std::move(it->second);
    lent_.erase(it);
  }
}

void LentValues::clear() {
  std::unordered_map<std::uint64_t, Buffer> lent;
  std::lock_guard lock(mu_);
  lent.swap(lent_);
}

std::size_t LentValues::count() const {
  std::lock_guard lock(mu_);
  return lent_.size();
}

void write_object_args(capnp::List<wire::ArgRef>::Builder out, const std::vector<ObjectArg>& args) {
  for (unsigned i = 0; i < args.size(); ++i) {
    const ObjectArg& a = args[i];
    out[i].setIndex(a.index);
    out[i].initObject().setOwner(a.id.owner);
    out[i].getObject().setSequence(a.id.sequence);
    out[i].setSize(a.size);
    out[i].setHolder(a.holder);
    out[i].setHolderName(a.holder_name);
    out[i].setByReference(a.by_reference);
  }
}

std::vector<ActorArg> read_actor_args(capnp::List<wire::ActorArg>::Reader args) {
  std::vector<ActorArg> out;
  out.reserve(args.size());
  for (auto a : args) {
    ActorArg arg{a.getIndex(),
                 ActorId{a.getActor().getOwner(), a.getActor().getSequence()},
                 a.getClassName(),
                 a.getCode(),
                 {}};
    for (auto m : a.getMethods()) arg.methods.emplace_back(m);
    out.push_back(std::move(arg));
  }
  return out;
}

ActorArg actor_arg(std::uint32_t index, const detail::ActorToken& actor) {
  const detail::ActorClassEntry& cls = actor.actor_class();
  ActorArg arg{index, actor.id(), cls.name, cls.code, {}};
  if (!cls.code.empty())
    for (const auto& m : cls.methods) arg.methods.push_back(m.name);
  return arg;
}

void write_actor_args(capnp::List<wire::ActorArg>::Builder out, const std::vector<ActorArg>& args) {
  for (unsigned i = 0; i < args.size(); ++i) {
    out[i].setIndex(args[i].index);
    out[i].initActor().setOwner(args[i].actor.owner);
    out[i].getActor().setSequence(args[i].actor.sequence);
    out[i].setClassName(args[i].class_name);
    if (args[i].code.empty()) continue;
    out[i].setCode(args[i].code);
    auto methods = out[i].initMethods(static_cast<unsigned>(args[i].methods.size()));
    for (unsigned j = 0; j < args[i].methods.size(); ++j) methods.set(j, args[i].methods[j]);
  }
}

namespace {
template <class Builder>
void write_passed(Builder out, const PassedArgs& passed) {
  write_object_args(out.initObjectRefs(static_cast<unsigned>(passed.objects.size())),
                    passed.objects);
  write_actor_args(out.initActorArgs(static_cast<unsigned>(passed.actors.size())), passed.actors);
}
}  // namespace

void write_passed_args(wire::ExecuteTask::Builder out, const PassedArgs& passed) {
  write_passed(out, passed);
}

void write_passed_args(wire::ConstructActor::Builder out, const PassedArgs& passed) {
  write_passed(out, passed);
}

OutgoingFds::~OutgoingFds() {
  for (int fd : fds) ::close(fd);
}

void close_all(std::deque<int>& fds) noexcept {
  for (int fd : fds) ::close(fd);
  fds.clear();
}

namespace {

capnp::Data::Reader data_of(const Buffer& b) {
  return {reinterpret_cast<const kj::byte*>(b.data()), b.size()};
}

template <class Builder>
void write_values(Builder message, const std::vector<Buffer>& values, LentValues& lent,
                  OutgoingFds& fds) {
  std::vector<unsigned> shared;
  std::vector<SharedSpan> spans;
  for (unsigned i = 0; i < values.size(); ++i) {
    if (values[i].size() <= kMaxInlineObjectBytes) continue;
    if (auto span = shared_span_of(values[i])) {
      shared.push_back(i);
      spans.push_back(*span);
    }
  }
  if (shared.size() > transport::kMaxSharedValues)
    throw Error(ErrorCategory::invalid_argument,
                "a call may take at most " + std::to_string(transport::kMaxSharedValues) +
                    " arguments larger than " + std::to_string(kMaxInlineObjectBytes) + " bytes");
  // Every descriptor first: one that cannot be opened leaves nothing lent.
  for (const SharedSpan& span : spans) fds.fds.push_back(reopen_read_only(span.fd));
  auto args = message.initArgs(static_cast<unsigned>(values.size()));
  auto out = message.initSharedArgs(static_cast<unsigned>(shared.size()));
  std::size_t next_shared = 0;
  for (unsigned i = 0; i < values.size(); ++i) {
    if (next_shared < shared.size() && shared[next_shared] == i) {
      const SharedSpan& span = spans[next_shared];
      auto v = out[static_cast<unsigned>(next_shared)];
      v.setIndex(i);
      v.setOffset(span.offset);
      v.setSize(span.size);
      v.setLend(lent.lend(values[i]));
      ++next_shared;
      continue;
    }
    args.set(i, data_of(values[i]));
  }
}

int take_fd(std::deque<int>& fds) {
  if (fds.empty())
    throw Error(ErrorCategory::invalid_argument, "a shared value came without its descriptor");
  int fd = fds.front();
  fds.pop_front();
  return fd;
}

}  // namespace

void write_arguments(wire::ExecuteTask::Builder message, const std::vector<Buffer>& values,
                     LentValues& lent, OutgoingFds& fds) {
  write_values(message, values, lent, fds);
}

void write_arguments(wire::ConstructActor::Builder message, const std::vector<Buffer>& values,
                     LentValues& lent, OutgoingFds& fds) {
  write_values(message, values, lent, fds);
}

std::vector<detail::ArgSpec> read_arguments(capnp::List<capnp::Data>::Reader args,
                                            capnp::List<wire::SharedValue>::Reader shared,
                                            std::deque<int>& fds,
                                            const std::function<void(std::uint64_t)>& release) {
  std::vector<detail::ArgSpec> out(args.size());
  for (unsigned i = 0; i < args.size(); ++i)
    out[i].value = payload_of(args[i].begin(), args[i].size());
  // Every descriptor is taken before any can fail, so a bad message leaves none behind.
  std::vector<int> taken;
  for (unsigned i = 0; i < shared.size(); ++i) {
    if (fds.empty()) {
      for (int fd : taken) ::close(fd);
      throw Error(ErrorCategory::invalid_argument, "a shared value came without its descriptor");
    }
    taken.push_back(take_fd(fds));
  }
  for (unsigned i = 0; i < shared.size(); ++i) {
    auto v = shared[i];
    std::uint64_t lend = v.getLend();
    Buffer mapped;
    try {
      // The codec checked the index; the validity of the range is checked against the file.
      mapped = map_shared(taken[i], v.getOffset(), v.getSize(), false,
                          [release, lend] { release(lend); });
      taken[i] = -1;
    } catch (...) {
      for (unsigned j = i + 1; j < taken.size(); ++j) ::close(taken[j]);
      throw;
    }
    out[v.getIndex()].value = payload_of(mapped);
  }
  return out;
}

void write_result(wire::TaskOutcome::Builder outcome, const detail::Payload& result,
                  OutgoingFds& fds) {
  std::size_t size = wire_size(result);
  if (size <= kMaxInlineObjectBytes) {
    std::string scratch;
    const std::string& bytes = wire_bytes(result, scratch);
    outcome.setValue(
        capnp::Data::Reader(reinterpret_cast<const kj::byte*>(bytes.data()), bytes.size()));
    return;
  }
  MutableBuffer block = allocate_shared(size);
  write_wire(result, block.data());
  Buffer value = std::move(block).freeze();
  auto span = shared_span_of(value);
  int fd = ::dup(span->fd);  // the block unmaps when `value` goes; the node maps its own view
  if (fd < 0) throw Error(ErrorCategory::overloaded, "no descriptor for a shared result");
  fds.fds.push_back(fd);
  auto s = outcome.initShared();
  s.setIndex(0);
  s.setOffset(span->offset);
  s.setSize(span->size);
  s.setLend(0);
}

Buffer read_result(wire::TaskOutcome::Reader outcome, std::deque<int>& fds) {
  if (outcome.isValue()) {
    auto v = outcome.getValue();
    return Buffer::copy_of(v.begin(), v.size());
  }
  if (!outcome.isShared()) return Buffer();
  auto s = outcome.getShared();
  int fd = take_fd(fds);
  // The worker's file must be sealed (as allocate_shared leaves it): otherwise the worker could
  // truncate it later and the node would fault (SIGBUS) reading it.
  if (!is_sealed(fd)) {
    ::close(fd);
    throw Error(ErrorCategory::invalid_argument, "a shared result in a file that is not sealed");
  }
  return map_shared(fd, s.getOffset(), s.getSize());
}

}  // namespace atl::runtime
