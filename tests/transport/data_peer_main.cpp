// A data-plane peer in a process of its own, for tests that kill one side mid-transfer.
//   atoll_data_peer receive tcp|ucx BLOCK_AT
//       listens on 127.0.0.1, prints "address ADDR", receives; once an object has BLOCK_AT bytes
//       (0: never) it prints "blocked" and holds its data thread for up to a minute
//   atoll_data_peer send tcp|ucx ADDRESS SIZE
//       sends one object of SIZE bytes to ADDRESS, prints "result ok" or "result CATEGORY MESSAGE"
// The token comes from ATOLL_DATA_TOKEN. Every wait is bounded: an orphaned peer exits.
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <string>
#include <thread>

#include "transport/data_plane.hpp"

namespace {

using namespace std::chrono_literals;
using namespace atl;
using namespace atl::transport;

DataPlaneOptions options(const std::string& backend, const char* name) {
  DataPlaneOptions o;
  const char* token = std::getenv("ATOLL_DATA_TOKEN");
  o.token = token ? token : "";
  o.name = name;
  o.backend = backend == "ucx" ? DataBackend::ucx : DataBackend::tcp;
  o.ucx_transports = "tcp";
  return o;
}

void say(const std::string& line) {
  std::printf("%s\n", line.c_str());
  std::fflush(stdout);
}

int receive(const std::string& backend, std::uint64_t block_at) {
  bool blocked = false;
  ReceiveHandlers handlers{
      .allocate =
          [](const IncomingObject& o) {
            return Allocation::accept(MutableBuffer::allocate(o.size));
          },
      .on_progress =
          [&](const IncomingObject&, std::uint64_t received) {
            if (block_at == 0 || received < block_at || blocked) return;
            blocked = true;
            say("blocked");
            std::this_thread::sleep_for(60s);  // the test kills this process long before
          },
  };
  DataPlane plane(options(backend, "peer-receiver"), std::move(handlers));
  say("address " + plane.address().to_string());
  std::this_thread::sleep_for(120s);
  return 0;
}

int send(const std::string& backend, const std::string& address, std::uint64_t size) {
  DataPlane plane(options(backend, "peer-sender"), {});
  try {
    auto channel = plane.connect(DataAddress::parse(address), {}, 30s);
    MutableBuffer bytes = MutableBuffer::allocate(size);
    channel->send_and_wait({1, 1}, std::move(bytes).freeze(), 120s);
    say("result ok");
  } catch (const Error& e) {
    say("result " + std::string(to_string(e.category())) + " " + e.what());
  }
  return 0;
}

}  // namespace

int main(int argc, char** argv) {
  const std::string mode = argc > 1 ? argv[1] : "";
  if (mode == "receive" && argc == 4) return receive(argv[2], std::strtoull(argv[3], nullptr, 10));
  if (mode == "send" && argc == 5)
    return send(argv[2], argv[3], std::strtoull(argv[4], nullptr, 10));
  std::fprintf(stderr,
               "usage: atoll_data_peer receive tcp|ucx BLOCK_AT\n"
               "       atoll_data_peer send tcp|ucx ADDRESS SIZE\n");
  return 2;
}
