// atoll/serialization.hpp — how values cross task boundaries.
//
// Values are encoded with msgpack, so other languages (Python) read the same bytes. Supported out
// of the box: arithmetic types, bool, std::string, std::vector, std::map, std::unordered_map,
// std::optional, std::tuple, std::pair, std::array, and atl::Buffer. A user struct opts in with
// ATOLL_FIELDS (encoded as a msgpack map of field names, readable from Python as a dict), or with
// msgpack's own adaptor specialisations (the ADL-free hook msgpack-cxx documents).
//
// An atl::Buffer at the top level of a value travels out of band: it is never copied inside one
// process, nor when a worker on the same node reads it (shared memory). Between processes it is a
// msgpack `bin`, so a parameter that reads a bin (std::vector<char>, std::string) takes a Buffer's
// bytes too. A Buffer nested in a container is encoded as `bin` (copied).
//
// Errors: a value that does not decode as the requested type raises atl::SerializationError
// naming the type.
//
// Example:
//   struct Point { double x, y; std::string label; ATOLL_FIELDS(x, y, label); };
//   auto ref = rt.put(Point{1, 2, "a"});
#pragma once

#ifndef MSGPACK_NO_BOOST
#define MSGPACK_NO_BOOST 1
#endif
#include <msgpack.hpp>

#include <string>
#include <typeinfo>
#include <utility>

#include "atoll/buffer.hpp"
#include "atoll/errors.hpp"

// Makes a struct serializable: list its fields, in any order, inside the struct.
#define ATOLL_FIELDS(...) MSGPACK_DEFINE_MAP(__VA_ARGS__)

namespace atl::detail {

// One encoded value: msgpack bytes, plus the Buffer itself when the value is an atl::Buffer.
struct Payload {
  std::string bytes;
  Buffer buffer;
  bool out_of_band = false;

  std::size_t size_bytes() const noexcept { return bytes.size() + buffer.size(); }
};

// Appends to a std::string; small values stay in its inline storage, so encoding an int
// allocates nothing.
struct StringSink {
  std::string* out;
  void write(const char* data, std::size_t size) { out->append(data, size); }
};

// A per-thread scratch zone for decoding, cleared before each use (decoding never re-enters).
msgpack::zone& scratch_zone();
[[noreturn]] void throw_decode_error(const std::type_info& type, const char* reason);
std::string demangle(const char* mangled);

template <class T>
Payload serialize(const T& value) {
  Payload p;
  if constexpr (std::is_same_v<T, Buffer>) {
    p.buffer = value;
    p.out_of_band = true;
  } else {
    StringSink sink{&p.bytes};
    msgpack::pack(sink, value);
  }
  return p;
}

inline Payload serialize_nil() {
  Payload p;
  p.bytes.push_back(static_cast<char>(0xc0));
  return p;
}

template <class T>
T deserialize(const Payload& p) {
  if constexpr (std::is_same_v<T, Buffer>) {
    if (p.out_of_band) return p.buffer;
  }
  try {
    if (p.out_of_band) {
      // A Buffer is a msgpack bin between processes: a type that reads a bin reads it here too.
      if (p.buffer.size() > 0xffffffffu)
        throw_decode_error(typeid(T), "the value is an atl::Buffer");
      msgpack::object bin;
      bin.type = msgpack::type::BIN;
      bin.via.bin.size = static_cast<std::uint32_t>(p.buffer.size());
      bin.via.bin.ptr = reinterpret_cast<const char*>(p.buffer.data());
      return bin.as<T>();
    }
    msgpack::zone& zone = scratch_zone();
    zone.clear();
    std::size_t offset = 0;
    msgpack::object obj = msgpack::unpack(zone, p.bytes.data(), p.bytes.size(), offset);
    if (offset != p.bytes.size()) throw_decode_error(typeid(T), "trailing bytes");
    return obj.as<T>();
  } catch (const msgpack::type_error&) {
    throw_decode_error(typeid(T), "type mismatch");
  } catch (const msgpack::unpack_error& e) {
    throw_decode_error(typeid(T), e.what());
  }
}

}  // namespace atl::detail

// msgpack adaptor for a Buffer nested inside another value: encoded as `bin`, decoded by copy.
namespace msgpack {
MSGPACK_API_VERSION_NAMESPACE(MSGPACK_DEFAULT_API_NS) {
  namespace adaptor {
  template <>
  struct pack<atl::Buffer> {
    template <class Stream>
    packer<Stream>& operator()(packer<Stream>& o, const atl::Buffer& b) const {
      o.pack_bin(static_cast<uint32_t>(b.size()));
      o.pack_bin_body(reinterpret_cast<const char*>(b.data()), static_cast<uint32_t>(b.size()));
      return o;
    }
  };
  template <>
  struct convert<atl::Buffer> {
    const msgpack::object& operator()(const msgpack::object& o, atl::Buffer& b) const {
      if (o.type != msgpack::type::BIN) throw msgpack::type_error();
      b = atl::Buffer::copy_of(o.via.bin.ptr, o.via.bin.size);
      return o;
    }
  };
  }  // namespace adaptor
}
}  // namespace msgpack
