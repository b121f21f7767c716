// How a Python value is laid out in an atoll Payload.
//
// A pickled value (protocol 5) and its out-of-band buffers (numpy arrays, large bytes, ...):
//   Payload::bytes  = a msgpack ext value (type kPythonExt) whose body is
//                     u8 version | u32 count | count x (u64 offset, u64 length) | pickle stream
//   Payload::buffer = one block holding every out-of-band buffer, each at a 64-byte aligned
//                     offset (so arrays read back in place are aligned)
// Integers are little-endian. Being a msgpack ext, the value decodes in C++ as nothing but an
// error ("type mismatch"), which is the truth: C++ cannot read a pickle. Plain msgpack values (from
// C++ tasks) are the cross-language form, read by msgpack_values.hpp.
//
// Writing copies each buffer once into memory from the object store's pool (objects are immutable:
// a later change to the caller's array must not change the stored value). Reading is zero-copy:
// every buffer comes back as a read-only StoreBuffer over the stored block.
#pragma once

#include <pybind11/pybind11.h>

#include <vector>

#include "atoll/atoll.hpp"

namespace atoll_py {

namespace py = pybind11;

inline constexpr std::int8_t kPythonExt = 0x50;  // 'P'

// Read-only bytes of a stored object, exposed through the buffer protocol; holding it keeps the
// object's memory alive.
struct StoreBuffer {
  atl::Buffer buffer;
};

// Encodes a pickle stream and its out-of-band buffers (objects with the buffer protocol, e.g.
// pickle.PickleBuffer). Call with the GIL held; it is released while large buffers are copied.
// The block comes from `core`'s pool, or from the heap without one (a node's worker process, whose
// results go to the node's shared memory anyway).
atl::detail::Payload encode_payload(atl::detail::Core* core, const py::handle& pickled,
                                    const py::handle& buffers);

// The pickle stream (as bytes) and the buffers (a list of StoreBuffer) of a Python payload.
// Raises atl::SerializationError for a value that is not a Python payload (a C++ value).
std::pair<py::bytes, py::list> decode_payload(const atl::detail::Payload& payload);

}  // namespace atoll_py
