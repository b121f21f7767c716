#include "python-bindings/src/payload.hpp"

#include <cstring>
#include <string>

namespace atoll_py {

namespace {

constexpr std::uint8_t kVersion = 1;
constexpr std::size_t kAlign = 64;
// Copies below this size are not worth releasing the GIL for.
constexpr std::size_t kReleaseGilBytes = 1 << 20;

template <class T>
void put_le(std::string& out, T v) {
  char bytes[sizeof(T)];
  for (std::size_t i = 0; i < sizeof(T); ++i) bytes[i] = static_cast<char>((v >> (8 * i)) & 0xff);
  out.append(bytes, sizeof(T));
}

template <class T>
T get_le(const unsigned char* p) {
  T v = 0;
  for (std::size_t i = 0; i < sizeof(T); ++i) v |= static_cast<T>(p[i]) << (8 * i);
  return v;
}

std::size_t align_up(std::size_t n) {
  return (n + kAlign - 1) & ~(kAlign - 1);
}

[[noreturn]] void not_python(const char* why) {
  throw atl::SerializationError(std::string("the object is not a Python value (") + why +
                                "): values written by C++ code cannot be read from Python yet");
}

}  // namespace

atl::detail::Payload encode_payload(atl::detail::Core* core, const py::handle& pickled,
                                    const py::handle& buffers) {
  std::vector<py::buffer_info> views;
  std::vector<std::pair<std::uint64_t, std::uint64_t>> table;
  std::size_t total = 0;
  if (!buffers.is_none()) {
    for (py::handle b : buffers) {
      auto info = py::reinterpret_borrow<py::buffer>(b).request();
      if (!PyBuffer_IsContiguous(info.view(), 'A'))
        throw atl::SerializationError("an out-of-band buffer is not contiguous");
      std::size_t size = static_cast<std::size_t>(info.size * info.itemsize);
      table.emplace_back(total, size);
      total = align_up(total + size);
      views.push_back(std::move(info));
    }
  }
  py::buffer_info stream = py::reinterpret_borrow<py::buffer>(pickled).request();
  std::size_t stream_size = static_cast<std::size_t>(stream.size * stream.itemsize);
  std::size_t body = 1 + 4 + table.size() * 16 + stream_size;
  if (body > 0xffffffffu) throw atl::SerializationError("a pickle stream over 4 GiB");

  atl::detail::Payload p;
  p.bytes.reserve(6 + body);
  p.bytes.push_back(static_cast<char>(0xc9));   // msgpack ext 32
  for (int shift = 24; shift >= 0; shift -= 8)  // msgpack lengths are big-endian
    p.bytes.push_back(static_cast<char>((body >> shift) & 0xff));
  p.bytes.push_back(static_cast<char>(kPythonExt));
  p.bytes.push_back(static_cast<char>(kVersion));
  put_le<std::uint32_t>(p.bytes, static_cast<std::uint32_t>(table.size()));
  for (auto [offset, length] : table) {
    put_le<std::uint64_t>(p.bytes, offset);
    put_le<std::uint64_t>(p.bytes, length);
  }
  p.bytes.append(static_cast<const char*>(stream.ptr), stream_size);

  if (total > 0) {  // empty buffers alone need no block (decode_payload reads them as empty)
    atl::MutableBuffer block =
        core != nullptr ? core->create_buffer(total) : atl::MutableBuffer::allocate(total);
    auto copy = [&] {
      for (std::size_t i = 0; i < views.size(); ++i)
        std::memcpy(block.data() + table[i].first, views[i].ptr, table[i].second);
    };
    if (total >= kReleaseGilBytes) {
      py::gil_scoped_release unlocked;  // the views keep the source buffers alive
      copy();
    } else {
      copy();
    }
    p.buffer = std::move(block).freeze();
    p.out_of_band = true;
  }
  return p;
}

std::pair<py::bytes, py::list> decode_payload(const atl::detail::Payload& payload) {
  const auto* b = reinterpret_cast<const unsigned char*>(payload.bytes.data());
  std::size_t n = payload.bytes.size();
  if (n < 6 + 5 || b[0] != 0xc9 || static_cast<std::int8_t>(b[5]) != kPythonExt)
    not_python("no Python header");
  std::size_t body =
      (std::size_t{b[1]} << 24) | (std::size_t{b[2]} << 16) | (std::size_t{b[3]} << 8) | b[4];
  if (body != n - 6 || b[6] != kVersion) not_python("bad header");
  std::size_t count = get_le<std::uint32_t>(b + 7);
  std::size_t table_end = 11 + count * 16;
  if (count > (n - 11) / 16) not_python("bad buffer table");
  py::list buffers;
  for (std::size_t i = 0; i < count; ++i) {
    auto offset = get_le<std::uint64_t>(b + 11 + i * 16);
    auto length = get_le<std::uint64_t>(b + 11 + i * 16 + 8);
    if (length == 0) {  // an empty buffer (np.empty(0)): no block needed, none may have travelled
      buffers.append(py::bytes());
      continue;
    }
    if (!payload.out_of_band || offset > payload.buffer.size() ||
        length > payload.buffer.size() - offset)
      not_python("buffer out of range");
    buffers.append(py::cast(StoreBuffer{payload.buffer.slice(offset, length)}));
  }
  return {py::bytes(reinterpret_cast<const char*>(b + table_end), n - table_end),
          std::move(buffers)};
}

}  // namespace atoll_py
