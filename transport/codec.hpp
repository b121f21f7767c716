// Decoding frames into Cap'n Proto messages without trusting them, and encoding messages.
//
// `decode<Root>` reads a frame under a traversal limit (a few times the frame's own size, so a
// hostile message cannot amplify work) and a nesting limit, then validates every field the
// runtime will read: union tags and enums are known values, nonces and proofs have their exact
// sizes, text fits its limit. Anything else is a DecodeError; the caller closes that connection.
//
// Thread-safety: Decoded messages are immutable and may be read from any thread.
#pragma once

#include <capnp/message.h>
#include <capnp/serialize.h>

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "transport/frame.hpp"
#include "transport/schema/control.capnp.h"

namespace atl::transport {

inline constexpr unsigned kNestingLimit = 16;
inline constexpr std::size_t kMaxNameBytes = 256;
inline constexpr std::size_t kMaxMessageTextBytes = 64u << 10;
// A binding's encoding of a remote exception (TaskFailure.details): dropped beyond this.
inline constexpr std::size_t kMaxFailureDetailsBytes = 1u << 20;
inline constexpr std::size_t kMaxTaskArgs = 1024;
// Shared-memory values in one worker message: each brings a descriptor (SCM_RIGHTS carries at
// most 253 in one message).
inline constexpr std::size_t kMaxSharedValues = 128;
inline constexpr std::uint32_t kMaxActorConcurrency = 1024;

template <class Root>
class Decoded {
 public:
  Decoded(Frame frame, std::unique_ptr<capnp::FlatArrayMessageReader> reader)
      : frame_(std::move(frame)), reader_(std::move(reader)) {}
  typename Root::Reader root() const { return reader_->getRoot<Root>(); }

 private:
  Frame frame_;  // the words the reader points into
  std::unique_ptr<capnp::FlatArrayMessageReader> reader_;
};

template <class Root>
struct DecodeResult {
  std::optional<Decoded<Root>> message;
  std::string error;  // set when message is empty
};

DecodeResult<wire::Handshake> decode_handshake(Frame frame);
DecodeResult<wire::Envelope> decode_envelope(Frame frame);
DecodeResult<wire::WorkerMessage> decode_worker_message(Frame frame);

// The builder for one control message. Most are a few hundred bytes, so the first segment is
// small: capnp's default (8 KiB, zeroed, for every message) cost more in malloc and memset than
// encoding itself. A larger message grows into further segments.
class ControlMessage : public capnp::MallocMessageBuilder {
 public:
  static constexpr unsigned kFirstSegmentWords = 64;
  ControlMessage() : capnp::MallocMessageBuilder(kFirstSegmentWords) {}
};

// The frame (length prefix included) for a built message.
std::vector<std::byte> encode(capnp::MessageBuilder& message);

}  // namespace atl::transport
