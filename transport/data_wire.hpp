// The data plane's wire format: fixed 24-byte headers, each followed by a body whose length the
// header announces. One format for every backend (TCP and UCX streams carry the same bytes).
//
//   byte 0     type          (MessageType)
//   byte 1     flags         (per type; unknown bits are refused)
//   bytes 2-3  reserved      (must be zero)
//   bytes 4-7  body length   (little-endian u32; bounded per type)
//   bytes 8-15 id            (little-endian u64: channel id in HELLO, transfer id in transfers)
//   bytes 16-23 value        (little-endian u64: window, size, offset, credit, category…)
//
// Handshake messages (HELLO, CHALLENGE, PROOF, WELCOME, REFUSED) are the only ones accepted
// before authentication; transfer messages (OFFER, ACCEPT, REJECT, CHUNK, CREDIT, COMPLETE) the
// only ones after. The decoders here check everything a single message can be checked for (type,
// phase, flags, reserved bits, body length, field ranges); what depends on the channel's state
// (known transfer ids, offsets, credit) is checked by the channel.
//
// Thread-safety: pure functions.
#pragma once

#include <array>
#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <vector>

#include "atoll/errors.hpp"
#include "atoll/ids.hpp"
#include "transport/auth.hpp"

namespace atl::transport::data_wire {

inline constexpr std::size_t kHeaderBytes = 24;
inline constexpr std::uint32_t kMagic = 0x50445441;  // "ATDP" little-endian
inline constexpr std::uint32_t kProtocolVersion = 1;
// The role passed to client_proof: keeps data-plane proofs apart from control-plane ones.
inline constexpr std::uint16_t kProofRole = 0x4450;

inline constexpr std::size_t kMaxNameBytes = 64;
inline constexpr std::size_t kMaxRefusalBytes = 256;
inline constexpr std::size_t kMaxRejectBytes = 1024;
// The largest body of any message but CHUNK: a reader can stage a whole control message.
inline constexpr std::size_t kMaxControlBodyBytes = kMaxRejectBytes;
inline constexpr std::size_t kMaxHandshakeBodyBytes = kMaxRefusalBytes;  // the largest of them

inline constexpr std::uint16_t kMaxStreams = 16;
inline constexpr std::uint32_t kMinChunkBytes = 4 * 1024;
inline constexpr std::uint32_t kMaxChunkBytes = 64u << 20;
inline constexpr std::uint64_t kMinWindowBytes = 64 * 1024;
inline constexpr std::uint64_t kMaxWindowBytes = 1ull << 30;

enum class MessageType : std::uint8_t {
  hello = 1,
  challenge = 2,
  proof = 3,
  welcome = 4,
  refused = 5,
  offer = 16,
  accept = 17,
  reject = 18,
  chunk = 19,
  credit = 20,
  complete = 21,
};

// OFFER flag: the whole object follows at once as one CHUNK on the same stream, without waiting
// for ACCEPT (small objects save a round trip).
inline constexpr std::uint8_t kFlagEager = 1;

enum class Phase { handshake, open };

struct Header {
  MessageType type{};
  std::uint8_t flags = 0;
  std::uint32_t body_length = 0;
  std::uint64_t id = 0;
  std::uint64_t value = 0;
};

using HeaderBytes = std::array<std::byte, kHeaderBytes>;

HeaderBytes encode_header(const Header& h);

// Decodes and checks a header for `phase`. `max_chunk_bytes` bounds CHUNK bodies. On failure
// returns nullopt and says why in `error` (for logs: never sent to an unauthenticated peer).
std::optional<Header> decode_header(std::span<const std::byte, kHeaderBytes> bytes, Phase phase,
                                    std::uint32_t max_chunk_bytes, std::string& error);

// Handshake bodies.
struct Hello {
  std::uint64_t channel_id = 0;
  std::uint64_t window_bytes = 0;  // the dialler's receive window per stream
  std::uint32_t version = kProtocolVersion;
  std::uint16_t stream_index = 0;
  std::uint16_t stream_count = 1;
  std::uint32_t max_chunk_bytes = 0;  // the largest CHUNK the dialler accepts
  Nonce nonce{};
  std::string name;
};
// The listener's answer: its own parameters, its nonce, and its proof of the token over both.
struct Challenge {
  std::uint64_t window_bytes = 0;  // the listener's receive window per stream
  std::uint32_t max_chunk_bytes = 0;
  Nonce nonce{};
  AuthProof proof{};
  std::string name;
};

std::vector<std::byte> encode(const Hello& m);
std::vector<std::byte> encode(const Challenge& m);
std::vector<std::byte> encode_proof(const AuthProof& proof);
std::vector<std::byte> encode_welcome();
std::vector<std::byte> encode_refused(std::string_view message);

// Each decoder takes a header already accepted by decode_header and the body it announced.
// A version other than ours is decoded (so it can be refused by name); everything else out of
// range is an error.
std::optional<Hello> decode_hello(const Header& h, std::span<const std::byte> body,
                                  std::string& error);
std::optional<Challenge> decode_challenge(const Header& h, std::span<const std::byte> body,
                                          std::string& error);
std::optional<AuthProof> decode_proof(const Header& h, std::span<const std::byte> body,
                                      std::string& error);
// The refusal's text, with anything but printable ASCII replaced.
std::string decode_refused(std::span<const std::byte> body);

// What the proofs cover instead of the raw nonces: SHA-256 over a data-plane label, the sender's
// announced parameters and its nonce. Binds both proofs to this protocol and to both sides'
// parameters (channel, stream, window, chunk size, name), so none can be changed in transit
// unnoticed. The proofs themselves are auth.hpp's server_proof and client_proof.
Nonce bind_client_nonce(const Hello& hello);
Nonce bind_server_nonce(const Challenge& challenge);

// Transfer messages.
struct Offer {
  std::uint64_t transfer_id = 0;
  std::uint64_t size = 0;
  ObjectId object;
  std::uint32_t chunk_bytes = 0;
  bool eager = false;
};

// Appends one encoded message (header and body) to `out`.
void append_offer(std::vector<std::byte>& out, const Offer& m);
void append_accept(std::vector<std::byte>& out, std::uint64_t transfer_id);
void append_reject(std::vector<std::byte>& out, std::uint64_t transfer_id, ErrorCategory category,
                   std::string_view message);
void append_credit(std::vector<std::byte>& out, std::uint64_t bytes);
void append_complete(std::vector<std::byte>& out, std::uint64_t transfer_id);
// Only the header: the payload follows from the sender's own memory.
HeaderBytes chunk_header(std::uint64_t transfer_id, std::uint64_t offset, std::uint32_t length);

std::optional<Offer> decode_offer(const Header& h, std::span<const std::byte> body,
                                  std::string& error);
// A REJECT's category (validated) and message (printable ASCII).
std::optional<ErrorCategory> decode_reject_category(const Header& h, std::string& error);
std::string decode_reject_message(std::span<const std::byte> body);

}  // namespace atl::transport::data_wire
