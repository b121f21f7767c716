// Plain values between Python and C++: msgpack, the form C++ tasks read and write. A C++ function
// called from Python (atoll.cpp_function) takes each argument as msgpack, and a value a C++ task
// returned reads back in Python from its msgpack (or, for an atl::Buffer, as read-only memory over
// the stored object, without a copy).
//
//   Python                          msgpack
//   None / bool / int / float       nil / bool / int (-2**63 .. 2**64-1) / float64
//   str                             str (UTF-8; a C++ string that is not UTF-8 reads as bytes)
//   bytes, bytearray, memoryview    bin (read back as bytes)
//   list, tuple                     array (read back as list)
//   dict                            map (keys of the same kinds)
//
// Anything else raises TypeError; an int out of range, a non-contiguous memoryview, more than
// 2**32 - 1 items or nesting deeper than 64 raise ValueError; each names what it could not convert.
// A map key that is a list reads back as a tuple. Reading raises atl::SerializationError for a
// value that is not plain msgpack (a pickled Python value is read by the pickle path instead).
#pragma once

#include <pybind11/pybind11.h>

#include <string>

#include "atoll/serialization.hpp"

namespace atoll_py {

namespace py = pybind11;

// `what` names the value in errors ("argument 2 of 'add'"). Call with the GIL held.
std::string to_msgpack(const py::handle& value, const std::string& what);

// True when the payload holds a plain value (msgpack, or an out-of-band atl::Buffer) rather than
// a pickled Python one.
bool is_plain(const atl::detail::Payload& payload);

// The Python value of a plain payload. Call with the GIL held.
py::object from_plain(const atl::detail::Payload& payload);

}  // namespace atoll_py
