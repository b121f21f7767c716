#include "python-bindings/src/msgpack_values.hpp"

#include <msgpack.hpp>

#include "atoll/errors.hpp"
#include "python-bindings/src/payload.hpp"

namespace atoll_py {

namespace {

constexpr int kMaxDepth = 64;
constexpr std::size_t kMaxLength = 0xffffffffu;  // msgpack's lengths are 32-bit

void check_length(std::size_t n, const std::string& what) {
  if (n > kMaxLength) throw py::value_error(what + " holds more than 2**32 - 1 items or bytes");
}

// A msgpack map key as a dict key: containers become (nested) tuples; a map is refused.
py::object hashable(py::object key) {
  if (PyList_Check(key.ptr()) || PyTuple_Check(key.ptr())) {
    py::list items;
    for (py::handle item : key) items.append(hashable(py::reinterpret_borrow<py::object>(item)));
    return py::tuple(items);
  }
  if (PyDict_Check(key.ptr()))
    throw atl::SerializationError("the value has a map keyed by a map, which Python cannot hash");
  return key;
}

void pack(msgpack::packer<atl::detail::StringSink>& out, const py::handle& v,
          const std::string& what, int depth) {
  if (depth > kMaxDepth)
    throw py::value_error(what + " nests deeper than " + std::to_string(kMaxDepth) + " levels");
  if (v.is_none()) {
    out.pack_nil();
  } else if (PyBool_Check(v.ptr())) {
    v.ptr() == Py_True ? out.pack_true() : out.pack_false();
  } else if (PyLong_Check(v.ptr())) {
    int overflow = 0;
    long long s = PyLong_AsLongLongAndOverflow(v.ptr(), &overflow);
    if (overflow == 0) {
      out.pack_int64(s);
    } else {
      unsigned long long u = overflow > 0 ? PyLong_AsUnsignedLongLong(v.ptr()) : 0;
      if (overflow < 0 || PyErr_Occurred()) {
        PyErr_Clear();
        throw py::value_error(what + ": the integer does not fit in 64 bits");
      }
      out.pack_uint64(u);
    }
  } else if (PyFloat_Check(v.ptr())) {
    out.pack_double(PyFloat_AS_DOUBLE(v.ptr()));
  } else if (PyUnicode_Check(v.ptr())) {
    Py_ssize_t size = 0;
    const char* utf8 = PyUnicode_AsUTF8AndSize(v.ptr(), &size);
    if (utf8 == nullptr) throw py::error_already_set();
    check_length(static_cast<std::size_t>(size), what);
    out.pack_str(static_cast<std::uint32_t>(size));
    out.pack_str_body(utf8, static_cast<std::uint32_t>(size));
  } else if (PyBytes_Check(v.ptr()) || PyByteArray_Check(v.ptr()) || PyMemoryView_Check(v.ptr())) {
    Py_buffer view;
    if (PyObject_GetBuffer(v.ptr(), &view, PyBUF_C_CONTIGUOUS) != 0) {
      PyErr_Clear();
      throw py::value_error(what + ": a memoryview must be C-contiguous (copy it with bytes())");
    }
    auto size = static_cast<std::size_t>(view.len);
    if (size > kMaxLength) {
      PyBuffer_Release(&view);
      throw py::value_error(what + ": bytes over 4 GiB");
    }
    out.pack_bin(static_cast<std::uint32_t>(size));
    out.pack_bin_body(static_cast<const char*>(view.buf), static_cast<std::uint32_t>(size));
    PyBuffer_Release(&view);
  } else if (PyList_Check(v.ptr()) || PyTuple_Check(v.ptr())) {
    auto seq = py::reinterpret_borrow<py::sequence>(v);
    check_length(seq.size(), what);
    out.pack_array(static_cast<std::uint32_t>(seq.size()));
    for (py::handle item : seq) pack(out, item, what, depth + 1);
  } else if (PyDict_Check(v.ptr())) {
    auto dict = py::reinterpret_borrow<py::dict>(v);
    check_length(dict.size(), what);
    out.pack_map(static_cast<std::uint32_t>(dict.size()));
    for (auto [key, value] : dict) {
      pack(out, key, what, depth + 1);
      pack(out, value, what, depth + 1);
    }
  } else {
    throw py::type_error(what + " has type " + std::string(py::str(v.get_type().attr("__name__"))) +
                         ", which C++ cannot read: pass None, bool, int, float, str, bytes, "
                         "list, tuple or dict");
  }
}

py::object unpack(const msgpack::object& o, int depth) {
  if (depth > kMaxDepth)
    throw atl::SerializationError("the value nests deeper than " + std::to_string(kMaxDepth) +
                                  " levels");
  switch (o.type) {
    case msgpack::type::NIL:
      return py::none();
    case msgpack::type::BOOLEAN:
      return py::bool_(o.via.boolean);
    case msgpack::type::POSITIVE_INTEGER:
      return py::int_(o.via.u64);
    case msgpack::type::NEGATIVE_INTEGER:
      return py::int_(o.via.i64);
    case msgpack::type::FLOAT32:
    case msgpack::type::FLOAT64:
      return py::float_(o.via.f64);
    case msgpack::type::STR: {
      // C++ writes every std::string as str, binary ones too: those read back as bytes.
      PyObject* text = PyUnicode_DecodeUTF8(o.via.str.ptr, o.via.str.size, "strict");
      if (text != nullptr) return py::reinterpret_steal<py::object>(text);
      PyErr_Clear();
      return py::bytes(o.via.str.ptr, o.via.str.size);
    }
    case msgpack::type::BIN:
      return py::bytes(o.via.bin.ptr, o.via.bin.size);
    case msgpack::type::ARRAY: {
      py::list out(o.via.array.size);
      for (std::uint32_t i = 0; i < o.via.array.size; ++i)
        out[i] = unpack(o.via.array.ptr[i], depth + 1);
      return std::move(out);
    }
    case msgpack::type::MAP: {
      py::dict out;
      for (std::uint32_t i = 0; i < o.via.map.size; ++i) {
        py::object key = hashable(unpack(o.via.map.ptr[i].key, depth + 1));
        out[key] = unpack(o.via.map.ptr[i].val, depth + 1);
      }
      return std::move(out);
    }
    default:
      throw atl::SerializationError("the value holds a msgpack extension Python cannot read");
  }
}

}  // namespace

std::string to_msgpack(const py::handle& value, const std::string& what) {
  std::string out;
  atl::detail::StringSink sink{&out};
  msgpack::packer<atl::detail::StringSink> packer(sink);
  pack(packer, value, what, 0);
  return out;
}

bool is_plain(const atl::detail::Payload& payload) {
  if (payload.out_of_band && payload.bytes.empty()) return true;  // an atl::Buffer
  const auto* b = reinterpret_cast<const unsigned char*>(payload.bytes.data());
  return !(payload.bytes.size() >= 6 && b[0] == 0xc9 &&
           static_cast<std::int8_t>(b[5]) == kPythonExt);
}

py::object from_plain(const atl::detail::Payload& payload) {
  if (payload.out_of_band && payload.bytes.empty())
    return py::memoryview(py::cast(StoreBuffer{payload.buffer}));
  msgpack::object_handle handle;
  try {
    std::size_t offset = 0;
    handle = msgpack::unpack(payload.bytes.data(), payload.bytes.size(), offset);
    if (offset != payload.bytes.size())
      throw atl::SerializationError("the value has trailing bytes after its msgpack");
  } catch (const msgpack::unpack_error& e) {
    throw atl::SerializationError(std::string("the value is not valid msgpack: ") + e.what());
  }
  return unpack(handle.get(), 0);
}

}  // namespace atoll_py
