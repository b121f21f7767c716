// The data plane's per-stream handshake, written once over ByteStream for every backend:
//
//   dialler  -> HELLO     magic, version, channel id, stream i of n, receive window, largest
//                         chunk accepted, name, client nonce
//   listener -> CHALLENGE its window, chunk limit, name, server nonce, and
//                         server_proof(token, bound client nonce, bound server nonce)
//   dialler  -> PROOF     client_proof(token, same, kProofRole), once the listener's proof checks
//   listener -> WELCOME   (or REFUSED with a reason; a dialler refuses by closing)
//
// The nonces are bound to the parameters each side announced (data_wire::bind_*_nonce), so the
// proofs authenticate them too. Nothing but these messages is decoded before WELCOME; bodies are
// at most a few hundred bytes; the whole exchange has a deadline. A listener tells an
// unauthenticated peer only "version mismatch" or "authentication failed", never what its
// decoder saw.
//
// Thread-safety: runs on the io_context's thread.
#pragma once

#include <asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "transport/byte_stream.hpp"

namespace atl::transport {

struct HandshakeParams {
  std::string token;
  std::string name;
  std::uint64_t window_bytes = 0;
  std::uint32_t max_chunk_bytes = 0;
  std::chrono::milliseconds timeout{10'000};
};

// What one authenticated stream agreed on.
struct StreamAgreement {
  ByteStreamPtr stream;
  std::uint64_t channel_id = 0;
  std::uint16_t stream_index = 0;
  std::uint16_t stream_count = 1;
  std::uint64_t peer_window_bytes = 0;
  std::uint32_t peer_max_chunk_bytes = 0;
  std::string peer_name;
};

using HandshakeDone = std::function<void(std::optional<StreamAgreement>, IoError)>;

// Each calls `done` exactly once; on failure the stream is closed.
void handshake_as_dialler(asio::io_context& io, ByteStreamPtr stream, const HandshakeParams& params,
                          std::uint64_t channel_id, std::uint16_t stream_index,
                          std::uint16_t stream_count, HandshakeDone done);
void handshake_as_listener(asio::io_context& io, ByteStreamPtr stream,
                           const HandshakeParams& params, HandshakeDone done);

}  // namespace atl::transport
