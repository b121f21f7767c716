// Values on the socketpair between a node agent and its worker processes. A small value travels
// inline in its message; a larger one that lives in shared memory (the node's object store) is
// lent instead: the message names its range and the file's descriptor goes with the frame
// (SCM_RIGHTS, read-only), so the worker maps the node's copy rather than receiving one. The
// worker says when it unmapped a lent value (`released`); until then the node keeps the block out
// of its pool, so reuse never changes bytes a worker still reads. A worker's large result comes
// back the same way, in a shared block the worker made.
//
// Thread-safety: LentValues is thread-safe; the functions are not tied to a thread.
#pragma once

#include <cstdint>
#include <deque>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "atoll/buffer.hpp"
#include "atoll/detail/core.hpp"
#include "atoll/ids.hpp"
#include "atoll/serialization.hpp"
#include "runtime/wire_values.hpp"
#include "transport/schema/control.capnp.h"

namespace atl::runtime {

// An argument of a task or actor call held as an object (on this node or another): fetched into
// the argument before the call runs, or, when the parameter is an ObjectRef (`by_reference`),
// handed to the worker as a reference it reads when it wants to.
struct ObjectArg {
  std::uint32_t index = 0;
  ObjectId id;
  std::uint64_t size = 0;
  std::string holder, holder_name;  // the holder's data address and name; empty: lost
  bool by_reference = false;
};
// An ActorHandle parameter: the worker calls the actor through a handle of its own.
struct ActorArg {
  std::uint32_t index = 0;
  ActorId actor;
  std::string class_name;
  std::string code;                  // a binding's class (see ActorClassEntry::code)
  std::vector<std::string> methods;  // its methods then
};
// An ActorHandle parameter of argument `index`, naming `actor`'s class (and for a binding's class,
// what a process that lacks it needs to call it).
ActorArg actor_arg(std::uint32_t index, const detail::ActorToken& actor);
std::vector<ActorArg> read_actor_args(capnp::List<wire::ActorArg>::Reader args);
void write_actor_args(capnp::List<wire::ActorArg>::Builder out, const std::vector<ActorArg>& args);

// The parameters a worker gets as references rather than values.
struct PassedArgs {
  std::vector<ObjectArg> objects;  // by_reference: borrowed from their holders
  std::vector<ActorArg> actors;
};
void write_passed_args(wire::ExecuteTask::Builder out, const PassedArgs& passed);
void write_passed_args(wire::ConstructActor::Builder out, const PassedArgs& passed);

// The node's record of values lent to one worker.
class LentValues {
 public:
  std::uint64_t lend(Buffer value);
  void released(std::uint64_t id);
  void clear();
  std::size_t count() const;

 private:
  mutable std::mutex mu_;
  std::uint64_t next_ = 1;
  std::unordered_map<std::uint64_t, Buffer> lent_;
};

// Descriptors to send with one frame; closed when this goes.
struct OutgoingFds {
  std::vector<int> fds;
  OutgoingFds() = default;
  OutgoingFds(const OutgoingFds&) = delete;
  OutgoingFds& operator=(const OutgoingFds&) = delete;
  ~OutgoingFds();
};

// Node side: fills `args` and `shared` (initialised here) of an ExecuteTask or ConstructActor
// builder from `values`. Raises Error(invalid_argument) for more shared values than a frame
// carries.
void write_arguments(wire::ExecuteTask::Builder message, const std::vector<Buffer>& values,
                     LentValues& lent, OutgoingFds& fds);
void write_arguments(wire::ConstructActor::Builder message, const std::vector<Buffer>& values,
                     LentValues& lent, OutgoingFds& fds);

// Worker side: the arguments of a message, shared ones mapped from the descriptors that came
// with it (taken from `fds`, in order); `release` runs with the lend id once the worker no
// longer maps one. Raises Error(invalid_argument) when the message and the descriptors disagree.
std::vector<detail::ArgSpec> read_arguments(capnp::List<capnp::Data>::Reader args,
                                            capnp::List<wire::SharedValue>::Reader shared,
                                            std::deque<int>& fds,
                                            const std::function<void(std::uint64_t)>& release);

// Worker side: sets `outcome`'s value from a task's result, in a new shared block (its descriptor
// into `fds`) when it is larger than kMaxInlineObjectBytes.
void write_result(wire::TaskOutcome::Builder outcome, const detail::Payload& result,
                  OutgoingFds& fds);

// Node side: the value of an outcome (mapped from the next descriptor when shared). Raises
// Error(invalid_argument) when a shared value came without its descriptor or does not fit it.
Buffer read_result(wire::TaskOutcome::Reader outcome, std::deque<int>& fds);

// Closes and forgets received descriptors nobody claimed.
void close_all(std::deque<int>& fds) noexcept;

}  // namespace atl::runtime
