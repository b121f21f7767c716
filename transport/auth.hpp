// Cluster credentials: a shared token, never sent over the wire. Both sides of a connection prove
// they hold it with HMAC-SHA256 over fresh random nonces from both sides (so a recorded exchange
// cannot be replayed), with distinct labels for the two directions (so one side's proof cannot be
// reflected back as the other's).
//
// Thread-safety: all functions are thread-safe.
#pragma once

#include <array>
#include <cstddef>
#include <filesystem>
#include <span>
#include <string>
#include <string_view>

namespace atl::transport {

inline constexpr std::size_t kNonceBytes = 32;
inline constexpr std::size_t kProofBytes = 32;
// Shorter tokens could be guessed offline from a recorded handshake proof.
inline constexpr std::size_t kMinTokenChars = 32;

using Nonce = std::array<std::byte, kNonceBytes>;
using AuthProof = std::array<std::byte, kProofBytes>;

Nonce make_nonce();
// 64 hex characters from 32 random bytes.
std::string generate_token();
// Raises Error(invalid_argument) for a token shorter than kMinTokenChars.
void validate_token(std::string_view token);

AuthProof server_proof(std::string_view token, const Nonce& client, const Nonce& server);
AuthProof client_proof(std::string_view token, const Nonce& client, const Nonce& server,
                       std::uint16_t role);
// Constant-time comparison.
bool proofs_match(std::span<const std::byte> a, std::span<const std::byte> b) noexcept;

// Reads the token stored at `path`, or creates one there with mode 0600. Raises
// Error(invalid_argument) when the file is a link, belongs to another user, is readable by group
// or others, or holds a short token.
std::string load_or_create_token(const std::filesystem::path& path);
// Replaces the token file atomically (written with mode 0600, then renamed).
void store_token(const std::filesystem::path& path, std::string_view token);

}  // namespace atl::transport
