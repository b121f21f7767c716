#include "transport/data_wire.hpp"

#include <openssl/evp.h>

#include <cstring>

namespace atl::transport::data_wire {

namespace {

constexpr std::size_t kHelloFixedBytes = 48;      // magic, version, index, count, chunk, nonce
constexpr std::size_t kChallengeFixedBytes = 72;  // chunk, reserved, nonce, proof
constexpr std::size_t kOfferBytes = 24;           // object owner, sequence, chunk, reserved

void put_u16(std::byte* p, std::uint16_t v) {
  for (int i = 0; i < 2; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
void put_u32(std::byte* p, std::uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
void put_u64(std::byte* p, std::uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = static_cast<std::byte>((v >> (8 * i)) & 0xff);
}
std::uint16_t get_u16(const std::byte* p) {
  return static_cast<std::uint16_t>(std::to_integer<unsigned>(p[0]) |
                                    std::to_integer<unsigned>(p[1]) << 8);
}
std::uint32_t get_u32(const std::byte* p) {
  std::uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = v << 8 | std::to_integer<std::uint32_t>(p[i]);
  return v;
}
std::uint64_t get_u64(const std::byte* p) {
  std::uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = v << 8 | std::to_integer<std::uint64_t>(p[i]);
  return v;
}

bool printable(std::span<const std::byte> bytes) {
  for (std::byte b : bytes) {
    auto c = std::to_integer<unsigned>(b);
    if (c < 0x20 || c > 0x7e) return false;
  }
  return true;
}

std::string printable_text(std::span<const std::byte> bytes) {
  std::string out;
  out.reserve(bytes.size());
  for (std::byte b : bytes) {
    auto c = std::to_integer<unsigned char>(b);
    out += (c >= 0x20 && c <= 0x7e) ? static_cast<char>(c) : '?';
  }
  return out;
}

std::string_view type_name(MessageType t) {
  switch (t) {
    case MessageType::hello:
      return "HELLO";
    case MessageType::challenge:
      return "CHALLENGE";
    case MessageType::proof:
      return "PROOF";
    case MessageType::welcome:
      return "WELCOME";
    case MessageType::refused:
      return "REFUSED";
    case MessageType::offer:
      return "OFFER";
    case MessageType::accept:
      return "ACCEPT";
    case MessageType::reject:
      return "REJECT";
    case MessageType::chunk:
      return "CHUNK";
    case MessageType::credit:
      return "CREDIT";
    case MessageType::complete:
      return "COMPLETE";
  }
  return "?";
}

// What a header of each type may carry.
struct Rule {
  Phase phase;
  std::size_t min_body, max_body;
  std::uint8_t allowed_flags;
  bool id_used, value_used;
};

std::optional<Rule> rule_for(std::uint8_t type, std::uint32_t max_chunk) {
  switch (static_cast<MessageType>(type)) {
    case MessageType::hello:
      return Rule{
          Phase::handshake, kHelloFixedBytes, kHelloFixedBytes + kMaxNameBytes, 0, true, true};
    case MessageType::challenge:
      return Rule{Phase::handshake,
                  kChallengeFixedBytes,
                  kChallengeFixedBytes + kMaxNameBytes,
                  0,
                  false,
                  true};
    case MessageType::proof:
      return Rule{Phase::handshake, kProofBytes, kProofBytes, 0, false, false};
    case MessageType::welcome:
      return Rule{Phase::handshake, 0, 0, 0, false, false};
    case MessageType::refused:
      return Rule{Phase::handshake, 0, kMaxRefusalBytes, 0, false, false};
    case MessageType::offer:
      return Rule{Phase::open, kOfferBytes, kOfferBytes, kFlagEager, true, true};
    case MessageType::accept:
    case MessageType::complete:
      return Rule{Phase::open, 0, 0, 0, true, false};
    case MessageType::reject:
      return Rule{Phase::open, 0, kMaxRejectBytes, 0, true, true};
    case MessageType::chunk:
      return Rule{Phase::open, 1, max_chunk, 0, true, true};
    case MessageType::credit:
      return Rule{Phase::open, 0, 0, 0, false, true};
  }
  return std::nullopt;
}

std::vector<std::byte> message(const Header& h, std::span<const std::byte> body) {
  std::vector<std::byte> out(kHeaderBytes + body.size());
  Header with_length = h;
  with_length.body_length = static_cast<std::uint32_t>(body.size());
  auto head = encode_header(with_length);
  std::memcpy(out.data(), head.data(), kHeaderBytes);
  if (!body.empty()) std::memcpy(out.data() + kHeaderBytes, body.data(), body.size());
  return out;
}

void append(std::vector<std::byte>& out, const Header& h, std::span<const std::byte> body = {}) {
  Header with_length = h;
  with_length.body_length = static_cast<std::uint32_t>(body.size());
  auto head = encode_header(with_length);
  out.insert(out.end(), head.begin(), head.end());
  out.insert(out.end(), body.begin(), body.end());
}

std::span<const std::byte> text_bytes(std::string_view s, std::size_t limit) {
  return std::as_bytes(std::span(s.data(), std::min(s.size(), limit)));
}

Nonce digest(std::string_view label, std::span<const std::byte> fields, const Nonce& nonce) {
  std::vector<unsigned char> data(label.begin(), label.end());
  auto add = [&](std::span<const std::byte> b) {
    auto p = reinterpret_cast<const unsigned char*>(b.data());
    data.insert(data.end(), p, p + b.size());
  };
  add(fields);
  add(nonce);
  Nonce out{};
  unsigned int len = 0;
  if (EVP_Digest(data.data(), data.size(), reinterpret_cast<unsigned char*>(out.data()), &len,
                 EVP_sha256(), nullptr) != 1 ||
      len != out.size())
    throw Error(ErrorCategory::failed, "SHA-256 failed");
  return out;
}

}  // namespace

HeaderBytes encode_header(const Header& h) {
  HeaderBytes out{};
  out[0] = static_cast<std::byte>(h.type);
  out[1] = static_cast<std::byte>(h.flags);
  put_u32(out.data() + 4, h.body_length);
  put_u64(out.data() + 8, h.id);
  put_u64(out.data() + 16, h.value);
  return out;
}

std::optional<Header> decode_header(std::span<const std::byte, kHeaderBytes> bytes, Phase phase,
                                    std::uint32_t max_chunk_bytes, std::string& error) {
  const std::byte* p = bytes.data();
  const auto type = std::to_integer<std::uint8_t>(p[0]);
  auto rule = rule_for(type, max_chunk_bytes);
  if (!rule) {
    error = "unknown message type " + std::to_string(type);
    return std::nullopt;
  }
  Header h;
  h.type = static_cast<MessageType>(type);
  h.flags = std::to_integer<std::uint8_t>(p[1]);
  h.body_length = get_u32(p + 4);
  h.id = get_u64(p + 8);
  h.value = get_u64(p + 16);
  const std::string name(type_name(h.type));
  if (rule->phase != phase)
    error = name + (phase == Phase::handshake ? " before the handshake completed"
                                              : " after the handshake completed");
  else if (p[2] != std::byte{0} || p[3] != std::byte{0})
    error = name + " with nonzero reserved bytes";
  else if ((h.flags & ~rule->allowed_flags) != 0)
    error = name + " with unknown flags " + std::to_string(h.flags);
  else if (h.body_length < rule->min_body || h.body_length > rule->max_body)
    error = name + " with a body of " + std::to_string(h.body_length) + " bytes (allowed " +
            std::to_string(rule->min_body) + " to " + std::to_string(rule->max_body) + ")";
  else if (!rule->id_used && h.id != 0)
    error = name + " with a nonzero id";
  else if (!rule->value_used && h.value != 0)
    error = name + " with a nonzero value";
  if (!error.empty()) return std::nullopt;
  return h;
}

std::vector<std::byte> encode(const Hello& m) {
  std::vector<std::byte> body(kHelloFixedBytes);
  put_u32(body.data(), kMagic);
  put_u32(body.data() + 4, m.version);
  put_u16(body.data() + 8, m.stream_index);
  put_u16(body.data() + 10, m.stream_count);
  put_u32(body.data() + 12, m.max_chunk_bytes);
  std::memcpy(body.data() + 16, m.nonce.data(), kNonceBytes);
  auto name = text_bytes(m.name, kMaxNameBytes);
  body.insert(body.end(), name.begin(), name.end());
  return message({.type = MessageType::hello, .id = m.channel_id, .value = m.window_bytes}, body);
}

std::vector<std::byte> encode(const Challenge& m) {
  std::vector<std::byte> body(kChallengeFixedBytes);
  put_u32(body.data(), m.max_chunk_bytes);
  std::memcpy(body.data() + 8, m.nonce.data(), kNonceBytes);
  std::memcpy(body.data() + 8 + kNonceBytes, m.proof.data(), kProofBytes);
  auto name = text_bytes(m.name, kMaxNameBytes);
  body.insert(body.end(), name.begin(), name.end());
  return message({.type = MessageType::challenge, .value = m.window_bytes}, body);
}

std::vector<std::byte> encode_proof(const AuthProof& proof) {
  return message({.type = MessageType::proof}, proof);
}

std::vector<std::byte> encode_welcome() {
  return message({.type = MessageType::welcome}, {});
}

std::vector<std::byte> encode_refused(std::string_view text) {
  return message({.type = MessageType::refused}, text_bytes(text, kMaxRefusalBytes));
}

namespace {

bool check_parameters(std::uint64_t window, std::uint32_t max_chunk, std::string& error) {
  if (window < kMinWindowBytes || window > kMaxWindowBytes)
    error = "receive window of " + std::to_string(window) + " bytes is out of range";
  else if (max_chunk < kMinChunkBytes || max_chunk > kMaxChunkBytes)
    error = "chunk limit of " + std::to_string(max_chunk) + " bytes is out of range";
  return error.empty();
}

}  // namespace

std::optional<Hello> decode_hello(const Header& h, std::span<const std::byte> body,
                                  std::string& error) {
  if (h.type != MessageType::hello || body.size() != h.body_length ||
      body.size() < kHelloFixedBytes) {
    error = "expected HELLO";
    return std::nullopt;
  }
  if (get_u32(body.data()) != kMagic) {
    error = "HELLO without the data-plane magic (not an atoll data plane)";
    return std::nullopt;
  }
  Hello m;
  m.channel_id = h.id;
  m.window_bytes = h.value;
  m.version = get_u32(body.data() + 4);
  if (m.version != kProtocolVersion) return m;  // refused by name by the caller
  m.stream_index = get_u16(body.data() + 8);
  m.stream_count = get_u16(body.data() + 10);
  m.max_chunk_bytes = get_u32(body.data() + 12);
  std::memcpy(m.nonce.data(), body.data() + 16, kNonceBytes);
  auto name = body.subspan(kHelloFixedBytes);
  if (m.stream_count == 0 || m.stream_count > kMaxStreams || m.stream_index >= m.stream_count)
    error = "stream " + std::to_string(m.stream_index) + " of " + std::to_string(m.stream_count) +
            " is out of range (at most " + std::to_string(kMaxStreams) + " streams)";
  else if (m.channel_id == 0)
    error = "channel id 0";
  else if (!check_parameters(m.window_bytes, m.max_chunk_bytes, error))
    ;
  else if (!printable(name))
    error = "name is not printable ASCII";
  if (!error.empty()) return std::nullopt;
  m.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
  return m;
}

std::optional<Challenge> decode_challenge(const Header& h, std::span<const std::byte> body,
                                          std::string& error) {
  if (h.type != MessageType::challenge || body.size() != h.body_length ||
      body.size() < kChallengeFixedBytes) {
    error = "expected CHALLENGE";
    return std::nullopt;
  }
  Challenge m;
  m.window_bytes = h.value;
  m.max_chunk_bytes = get_u32(body.data());
  std::memcpy(m.nonce.data(), body.data() + 8, kNonceBytes);
  std::memcpy(m.proof.data(), body.data() + 8 + kNonceBytes, kProofBytes);
  auto name = body.subspan(kChallengeFixedBytes);
  if (get_u32(body.data() + 4) != 0)
    error = "CHALLENGE with nonzero reserved bytes";
  else if (!check_parameters(m.window_bytes, m.max_chunk_bytes, error))
    ;
  else if (!printable(name))
    error = "name is not printable ASCII";
  if (!error.empty()) return std::nullopt;
  m.name.assign(reinterpret_cast<const char*>(name.data()), name.size());
  return m;
}

std::optional<AuthProof> decode_proof(const Header& h, std::span<const std::byte> body,
                                      std::string& error) {
  if (h.type != MessageType::proof || body.size() != kProofBytes) {
    error = "expected PROOF";
    return std::nullopt;
  }
  AuthProof p{};
  std::memcpy(p.data(), body.data(), kProofBytes);
  return p;
}

std::string decode_refused(std::span<const std::byte> body) {
  return printable_text(body.first(std::min(body.size(), kMaxRefusalBytes)));
}

Nonce bind_client_nonce(const Hello& m) {
  std::vector<std::byte> fields(28);
  put_u64(fields.data(), m.channel_id);
  put_u64(fields.data() + 8, m.window_bytes);
  put_u32(fields.data() + 16, m.version);
  put_u16(fields.data() + 20, m.stream_index);
  put_u16(fields.data() + 22, m.stream_count);
  put_u32(fields.data() + 24, m.max_chunk_bytes);
  auto name = std::as_bytes(std::span(m.name));
  fields.insert(fields.end(), name.begin(), name.end());
  return digest("atoll/data-plane/client/v1", fields, m.nonce);
}

Nonce bind_server_nonce(const Challenge& m) {
  std::vector<std::byte> fields(12);
  put_u64(fields.data(), m.window_bytes);
  put_u32(fields.data() + 8, m.max_chunk_bytes);
  auto name = std::as_bytes(std::span(m.name));
  fields.insert(fields.end(), name.begin(), name.end());
  return digest("atoll/data-plane/server/v1", fields, m.nonce);
}

void append_offer(std::vector<std::byte>& out, const Offer& m) {
  std::array<std::byte, kOfferBytes> body{};
  put_u64(body.data(), m.object.owner);
  put_u64(body.data() + 8, m.object.sequence);
  put_u32(body.data() + 16, m.chunk_bytes);
  append(out,
         {.type = MessageType::offer,
          .flags = static_cast<std::uint8_t>(m.eager ? kFlagEager : 0),
          .id = m.transfer_id,
          .value = m.size},
         body);
}

void append_accept(std::vector<std::byte>& out, std::uint64_t transfer_id) {
  append(out, {.type = MessageType::accept, .id = transfer_id});
}

void append_reject(std::vector<std::byte>& out, std::uint64_t transfer_id, ErrorCategory category,
                   std::string_view text) {
  append(out,
         {.type = MessageType::reject,
          .id = transfer_id,
          .value = static_cast<std::uint64_t>(category)},
         text_bytes(text, kMaxRejectBytes));
}

void append_credit(std::vector<std::byte>& out, std::uint64_t bytes) {
  append(out, {.type = MessageType::credit, .value = bytes});
}

void append_complete(std::vector<std::byte>& out, std::uint64_t transfer_id) {
  append(out, {.type = MessageType::complete, .id = transfer_id});
}

HeaderBytes chunk_header(std::uint64_t transfer_id, std::uint64_t offset, std::uint32_t length) {
  return encode_header(
      {.type = MessageType::chunk, .body_length = length, .id = transfer_id, .value = offset});
}

std::optional<Offer> decode_offer(const Header& h, std::span<const std::byte> body,
                                  std::string& error) {
  if (h.type != MessageType::offer || body.size() != kOfferBytes) {
    error = "expected OFFER";
    return std::nullopt;
  }
  Offer m;
  m.transfer_id = h.id;
  m.size = h.value;
  m.eager = (h.flags & kFlagEager) != 0;
  m.object.owner = get_u64(body.data());
  m.object.sequence = get_u64(body.data() + 8);
  m.chunk_bytes = get_u32(body.data() + 16);
  if (get_u32(body.data() + 20) != 0)
    error = "OFFER with nonzero reserved bytes";
  else if (m.chunk_bytes < kMinChunkBytes || m.chunk_bytes > kMaxChunkBytes)
    error = "OFFER with a chunk size of " + std::to_string(m.chunk_bytes) + " bytes";
  else if (m.eager && (m.size == 0 || m.size > m.chunk_bytes))
    error = "eager OFFER of " + std::to_string(m.size) + " bytes does not fit one chunk";
  if (!error.empty()) return std::nullopt;
  return m;
}

std::optional<ErrorCategory> decode_reject_category(const Header& h, std::string& error) {
  if (h.type != MessageType::reject ||
      h.value > static_cast<std::uint64_t>(ErrorCategory::unimplemented)) {
    error = "REJECT with unknown error category " + std::to_string(h.value);
    return std::nullopt;
  }
  return static_cast<ErrorCategory>(h.value);
}

std::string decode_reject_message(std::span<const std::byte> body) {
  return printable_text(body.first(std::min(body.size(), kMaxRejectBytes)));
}

}  // namespace atl::transport::data_wire
