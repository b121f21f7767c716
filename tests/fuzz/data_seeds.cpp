// Writes a seed corpus for atoll_data_fuzz: one file per path, each a valid exchange (the first
// byte picks the path, see data_fuzz.cpp).  atoll_data_seeds DIR
#include <filesystem>
#include <fstream>
#include <iostream>
#include <vector>

#include "transport/data_wire.hpp"

namespace {

using namespace atl;
namespace wire = atl::transport::data_wire;
using Bytes = std::vector<std::byte>;

void add(Bytes& out, const Bytes& more) {
  out.insert(out.end(), more.begin(), more.end());
}

Bytes header(wire::Header h) {
  auto b = wire::encode_header(h);
  return {b.begin(), b.end()};
}

Bytes chunk(std::uint64_t id, std::uint64_t offset, std::uint32_t length) {
  Bytes out =
      header({.type = wire::MessageType::chunk, .body_length = length, .id = id, .value = offset});
  out.resize(out.size() + length, std::byte{0x42});
  return out;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::cerr << "usage: atoll_data_seeds DIR\n";
    return 2;
  }
  std::filesystem::create_directories(argv[1]);
  wire::Hello hello{.channel_id = 7,
                    .window_bytes = 1u << 20,
                    .stream_count = 1,
                    .max_chunk_bytes = 64 * 1024,
                    .nonce = {},
                    .name = "seed"};
  wire::Challenge challenge{.window_bytes = 1u << 20,
                            .max_chunk_bytes = 64 * 1024,
                            .nonce = {},
                            .proof = {},
                            .name = "seed"};
  std::vector<std::pair<std::string, Bytes>> seeds;

  Bytes decoders{std::byte{0}};
  add(decoders, wire::encode(hello));
  add(decoders, wire::encode(challenge));
  add(decoders, wire::encode_proof({}));
  add(decoders, wire::encode_welcome());
  add(decoders, wire::encode_refused("no"));
  wire::append_offer(decoders, {.transfer_id = 1, .size = 10, .chunk_bytes = 4096, .eager = true});
  wire::append_reject(decoders, 1, ErrorCategory::overloaded, "full");
  seeds.emplace_back("decoders", decoders);

  Bytes listener{std::byte{1}};
  add(listener, wire::encode(hello));
  add(listener, wire::encode_proof({}));
  seeds.emplace_back("listener", listener);

  Bytes dialler{std::byte{2}};
  add(dialler, wire::encode(challenge));
  add(dialler, wire::encode_welcome());
  seeds.emplace_back("dialler", dialler);
  Bytes refused{std::byte{2}};
  add(refused, wire::encode_refused("authentication failed"));
  seeds.emplace_back("dialler-refused", refused);

  Bytes receive{std::byte{3}};
  wire::append_offer(
      receive,
      {.transfer_id = 1, .size = 100, .object = {1, 1}, .chunk_bytes = 65536, .eager = true});
  add(receive, chunk(1, 0, 100));
  wire::append_offer(receive,
                     {.transfer_id = 2, .size = 70000, .object = {1, 2}, .chunk_bytes = 65536});
  add(receive, chunk(2, 0, 65536));
  add(receive, chunk(2, 65536, 70000 - 65536));
  wire::append_offer(receive,
                     {.transfer_id = 3, .size = 0, .object = {1, 3}, .chunk_bytes = 65536});
  seeds.emplace_back("receive", receive);

  Bytes send{std::byte{3}};
  wire::append_credit(send, 100);
  wire::append_complete(send, 1);
  wire::append_accept(send, 2);
  wire::append_credit(send, 65536);
  wire::append_credit(send, 200 * 1024 - 65536);
  wire::append_complete(send, 2);
  seeds.emplace_back("send", send);
  Bytes rejected{std::byte{3}};
  wire::append_reject(rejected, 2, ErrorCategory::overloaded, "the store is full");
  wire::append_reject(rejected, 1, ErrorCategory::invalid_argument, "too big");
  seeds.emplace_back("rejected", rejected);

  for (const auto& [name, bytes] : seeds) {
    std::ofstream out(std::filesystem::path(argv[1]) / ("seed-data-" + name), std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
  }
  return 0;
}
