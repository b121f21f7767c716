// Values between processes. In one process an atl::Buffer travels out of band (no copy); between
// processes it is a msgpack `bin`, so other languages read it as bytes and a C++ parameter of a
// byte-container type reads it too. A large value read from shared memory or the data plane keeps
// its block: a Buffer inside it becomes a slice of that block rather than a copy.
//
// A binding's value with out-of-band data (a Python pickle and its buffers: msgpack bytes *and* a
// Buffer) travels as its msgpack bytes, which must be one ext 32 value, followed directly by the
// block's bytes. The ext's length says where the block starts, so the reader splits them again.
//
// Thread-safety: pure functions.
#pragma once

#include <cstddef>
#include <string>

#include "atoll/buffer.hpp"
#include "atoll/serialization.hpp"

namespace atl::runtime {

// Values up to this size travel inline in messages (control messages, a worker's socketpair);
// larger ones stay with their producer and move over the data plane, or through shared memory
// between a node and its workers.
inline constexpr std::size_t kMaxInlineObjectBytes = 100 * 1024;

// The bytes a payload has between processes.
std::size_t wire_size(const detail::Payload& p) noexcept;
// Writes them to `out` (wire_size(p) bytes).
void write_wire(const detail::Payload& p, std::byte* out);
// The same, as a string (small values). Raises Error(invalid_argument) for a Buffer of 4 GiB or
// more (a msgpack bin's size is 32 bits).
std::string wire_string(const detail::Payload& p);
// `wire_string` with msgpack bytes returned as they are (no copy when not a Buffer).
const std::string& wire_bytes(const detail::Payload& p, std::string& scratch);

// The payload a value read from another process stands for: a lone msgpack bin becomes an
// out-of-band Buffer over the same bytes (sharing `encoded`'s block); anything else is copied
// into the payload's msgpack bytes.
detail::Payload payload_of(const Buffer& encoded);
// The same for bytes received inline (copied: a block after an ext value becomes a Buffer).
detail::Payload payload_of(const void* data, std::size_t size);

}  // namespace atl::runtime
