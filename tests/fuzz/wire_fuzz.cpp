// libFuzzer target for the control-plane wire path: bytes -> FrameDecoder -> decode_handshake /
// decode_envelope / decode_worker_message -> every field of an accepted message, through the
// generated union accessors and then through the dynamic API (which also covers members added
// later). Nothing here catches exceptions: the decoders promise to report errors, never throw, and
// an accepted message must be readable.
#include <cstddef>
#include <cstdint>
#include <span>

#include "tests/transport/wire_walk.hpp"
#include "transport/codec.hpp"
#include "transport/frame.hpp"
#include "transport/schema/control.capnp.h"

namespace {

using atl::transport::Frame;

volatile std::uint64_t g_sink;

void touch(capnp::Data::Reader d) {
  std::uint64_t sum = d.size();
  for (auto b : d) sum += b;
  g_sink = g_sink + sum;
}

void touch(capnp::Text::Reader t) {
  std::uint64_t sum = t.size();
  for (char c : t) sum += static_cast<unsigned char>(c);
  sum += static_cast<unsigned char>(t.cStr()[t.size()]);  // the NUL terminator
  g_sink = g_sink + sum;
}

void touch(std::uint64_t v) {
  g_sink = g_sink + v;
}

void read_all(atl::wire::Handshake::Reader h) {
  using atl::wire::Handshake;
  switch (h.which()) {
    case Handshake::HELLO: {
      auto m = h.getHello();
      touch(m.getProtocolVersion());
      touch(static_cast<std::uint64_t>(m.getRole()));
      touch(m.getName());
      touch(m.getClientNonce());
      break;
    }
    case Handshake::CHALLENGE: {
      auto m = h.getChallenge();
      touch(m.getProtocolVersion());
      touch(m.getServerNonce());
      touch(m.getServerProof());
      break;
    }
    case Handshake::PROOF:
      touch(h.getProof().getClientProof());
      break;
    case Handshake::WELCOME:
      touch(h.getWelcome().getSessionId());
      break;
    case Handshake::REFUSAL: {
      auto m = h.getRefusal();
      touch(static_cast<std::uint64_t>(m.getReason()));
      touch(m.getMessage());
      break;
    }
  }
}

void read_all(atl::wire::Envelope::Reader e) {
  using Body = atl::wire::Envelope::Body;
  touch(e.getRequestId());
  touch(e.getTimeoutMs());
  auto body = e.getBody();
  switch (body.which()) {
    case Body::PING:
      touch(body.getPing().getSentNs());
      break;
    case Body::PONG:
      touch(body.getPong().getSentNs());
      break;
    case Body::ERROR: {
      auto m = body.getError();
      touch(static_cast<std::uint64_t>(m.getCategory()));
      touch(m.getMessage());
      break;
    }
    default:  // members added after this target was written: the dynamic walk reads them
      break;
  }
}

void decode(const Frame& frame) {
  auto h = atl::transport::decode_handshake(frame);
  if (h.message) {
    read_all(h.message->root());
    touch(atl::wire_test::walk_message(h.message->root()));
  }
  auto e = atl::transport::decode_envelope(frame);
  if (e.message) {
    read_all(e.message->root());
    touch(atl::wire_test::walk_message(e.message->root()));
  }
  // A worker's messages come from the job's code: decoded with the same care.
  auto w = atl::transport::decode_worker_message(frame);
  if (w.message) touch(atl::wire_test::walk_message(w.message->root()));
}

void drain(atl::transport::FrameDecoder& decoder) {
  while (auto frame = decoder.next()) decode(*frame);
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  if (size == 0) return 0;
  // The whole input is the byte stream; its first byte also picks where the stream is cut in two,
  // so frames and headers get split across feeds.
  const std::size_t split = size * data[0] / 256;
  const auto bytes = std::as_bytes(std::span(data, size));
  atl::transport::FrameDecoder decoder(1u << 20);
  if (decoder.feed(bytes.first(split))) drain(decoder);
  if (decoder.feed(bytes.subspan(split))) drain(decoder);
  drain(decoder);  // a no-op once failed; harmless otherwise
  return 0;
}
