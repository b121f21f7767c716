#include "transport/codec.hpp"

#include <kj/exception.h>

#include "transport/auth.hpp"

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
      return {};
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
  }
  return "unknown message type";
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
    result.error = validate(reader->getRoot<Root>());
    if (result.error.empty()) result.message.emplace(std::move(frame), std::move(reader));
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

std::vector<std::byte> encode(capnp::MessageBuilder& message) {
  kj::Array<capnp::word> flat = capnp::messageToFlatArray(message);
  auto bytes = flat.asBytes();
  return encode_frame({reinterpret_cast<const std::byte*>(bytes.begin()), bytes.size()});
}

}  // namespace atl::transport
