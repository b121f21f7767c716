#include "transport/auth.hpp"

#include <fcntl.h>
#include <openssl/crypto.h>
#include <openssl/hmac.h>
#include <openssl/rand.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <vector>

#include "atoll/errors.hpp"

namespace atl::transport {

namespace {

void fill_random(std::span<std::byte> out) {
  if (RAND_bytes(reinterpret_cast<unsigned char*>(out.data()), static_cast<int>(out.size())) != 1)
    throw Error(ErrorCategory::failed, "the system random number generator failed");
}

AuthProof hmac(std::string_view token, std::string_view label, const Nonce& client,
               const Nonce& server, std::span<const std::byte> extra) {
  std::vector<unsigned char> data;
  data.insert(data.end(), label.begin(), label.end());
  auto add = [&](std::span<const std::byte> b) {
    auto p = reinterpret_cast<const unsigned char*>(b.data());
    data.insert(data.end(), p, p + b.size());
  };
  add(client);
  add(server);
  add(extra);
  AuthProof out{};
  unsigned int len = 0;
  if (HMAC(EVP_sha256(), token.data(), static_cast<int>(token.size()), data.data(), data.size(),
           reinterpret_cast<unsigned char*>(out.data()), &len) == nullptr ||
      len != out.size())
    throw Error(ErrorCategory::failed, "HMAC-SHA256 failed");
  return out;
}

}  // namespace

Nonce make_nonce() {
  Nonce n;
  fill_random(n);
  return n;
}

std::string generate_token() {
  std::array<std::byte, 32> raw;
  fill_random(raw);
  static constexpr char kHex[] = "0123456789abcdef";
  std::string out;
  for (std::byte b : raw) {
    out += kHex[static_cast<unsigned>(b) >> 4];
    out += kHex[static_cast<unsigned>(b) & 0xf];
  }
  return out;
}

void validate_token(std::string_view token) {
  if (token.size() < kMinTokenChars)
    throw Error(
        ErrorCategory::invalid_argument,
        "the cluster token must have at least " + std::to_string(kMinTokenChars) + " characters");
}

AuthProof server_proof(std::string_view token, const Nonce& client, const Nonce& server) {
  return hmac(token, "atoll/server", client, server, {});
}

AuthProof client_proof(std::string_view token, const Nonce& client, const Nonce& server,
                       std::uint16_t role) {
  std::array<std::byte, 2> r{static_cast<std::byte>(role & 0xff),
                             static_cast<std::byte>(role >> 8)};
  return hmac(token, "atoll/client", client, server, r);
}

bool proofs_match(std::span<const std::byte> a, std::span<const std::byte> b) noexcept {
  return a.size() == b.size() && CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

namespace {

// Reads the token through a descriptor that refuses symlinks, after checking who owns the file.
std::optional<std::string> read_private_token(const std::filesystem::path& path) {
  int fd = ::open(path.c_str(), O_RDONLY | O_NOFOLLOW | O_CLOEXEC);
  if (fd < 0) {
    if (errno == ENOENT) return std::nullopt;
    throw Error(ErrorCategory::invalid_argument, "cannot open the token file " + path.string() +
                                                     ": " + std::strerror(errno) +
                                                     " (it must be a regular file, not a link)");
  }
  struct stat st {};
  ::fstat(fd, &st);
  std::string token;
  char buf[512];
  ssize_t n = ::read(fd, buf, sizeof buf);
  ::close(fd);
  if (!S_ISREG(st.st_mode) || st.st_uid != ::geteuid())
    throw Error(ErrorCategory::invalid_argument,
                "the token file " + path.string() + " is not a regular file owned by this user");
  if ((st.st_mode & 077) != 0)
    throw Error(ErrorCategory::invalid_argument,
                "the token file " + path.string() + " is readable by other users; run: chmod 600 " +
                    path.string());
  if (n > 0) token.assign(buf, static_cast<std::size_t>(n));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  validate_token(token);
  return token;
}

}  // namespace

void store_token(const std::filesystem::path& path, std::string_view token) {
  validate_token(token);
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
  std::filesystem::path tmp = path;
  tmp += ".tmp." + std::to_string(::getpid());
  int fd = ::open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0)
    throw Error(ErrorCategory::failed,
                "cannot create the token file " + tmp.string() + ": " + std::strerror(errno));
  std::string line = std::string(token) + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok || ::rename(tmp.c_str(), path.c_str()) != 0) {
    ::unlink(tmp.c_str());
    throw Error(ErrorCategory::failed, "cannot write the token file " + path.string());
  }
}

std::string load_or_create_token(const std::filesystem::path& path) {
  if (auto token = read_private_token(path)) return *token;
  if (!path.parent_path().empty()) std::filesystem::create_directories(path.parent_path());
  std::string token = generate_token();
  int fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_NOFOLLOW | O_CLOEXEC, 0600);
  if (fd < 0 && errno == EEXIST) return *read_private_token(path);  // created concurrently
  if (fd < 0)
    throw Error(ErrorCategory::failed,
                "cannot create the token file " + path.string() + ": " + std::strerror(errno));
  std::string line = token + "\n";
  bool ok = ::write(fd, line.data(), line.size()) == static_cast<ssize_t>(line.size());
  ::close(fd);
  if (!ok) throw Error(ErrorCategory::failed, "cannot write the token file " + path.string());
  return token;
}

}  // namespace atl::transport
