#include "runtime/module_store.hpp"

#include <openssl/evp.h>
#include <unistd.h>

#include <fstream>
#include <memory>
#include <random>
#include <vector>

#include "atoll/errors.hpp"
#include "runtime/module_loader.hpp"

namespace atl::runtime {

namespace fs = std::filesystem;

namespace {

class Sha256 {
 public:
  Sha256() : ctx_(EVP_MD_CTX_new(), EVP_MD_CTX_free) {
    if (!ctx_ || EVP_DigestInit_ex(ctx_.get(), EVP_sha256(), nullptr) != 1)
      throw Error(ErrorCategory::failed, "SHA-256 is unavailable");
  }
  void update(const void* data, std::size_t size) { EVP_DigestUpdate(ctx_.get(), data, size); }
  std::string hex() {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int len = 0;
    EVP_DigestFinal_ex(ctx_.get(), digest, &len);
    static constexpr char kHex[] = "0123456789abcdef";
    std::string out;
    for (unsigned i = 0; i < len; ++i) {
      out += kHex[digest[i] >> 4];
      out += kHex[digest[i] & 0xf];
    }
    return out;
  }

 private:
  std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX*)> ctx_;
};

bool is_hash(const std::string& h) {
  if (h.size() != 64) return false;
  for (char c : h)
    if (!((c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'))) return false;
  return true;
}

}  // namespace

std::string sha256_hex(std::span<const std::byte> bytes) {
  Sha256 h;
  h.update(bytes.data(), bytes.size());
  return h.hex();
}

std::string sha256_file(const fs::path& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCategory::failed, "cannot read " + path.string());
  Sha256 h;
  std::vector<char> buf(1 << 16);
  while (in) {
    in.read(buf.data(), static_cast<std::streamsize>(buf.size()));
    h.update(buf.data(), static_cast<std::size_t>(in.gcount()));
  }
  return h.hex();
}

ModuleStore::ModuleStore(fs::path dir) : dir_(std::move(dir)) {
  fs::create_directories(dir_);
}

fs::path ModuleStore::path_of(const std::string& hash) const {
  if (!is_hash(hash))
    throw Error(ErrorCategory::invalid_argument, "'" + hash + "' is not a SHA-256 hash");
  return dir_ / (hash + ".so");
}

std::string ModuleStore::put(std::span<const std::byte> bytes) {
  std::string hash = sha256_hex(bytes);
  fs::path target = path_of(hash);
  if (fs::exists(target) && sha256_file(target) == hash) return hash;
  // Write beside the target, then rename: readers see the whole file or none.
  fs::path tmp = dir_ / (hash + ".tmp." + std::to_string(::getpid()) + "." +
                         std::to_string(std::random_device{}()));
  {
    std::ofstream out(tmp, std::ios::binary);
    out.write(reinterpret_cast<const char*>(bytes.data()),
              static_cast<std::streamsize>(bytes.size()));
    if (!out) throw Error(ErrorCategory::failed, "cannot write " + tmp.string());
  }
  fs::permissions(tmp, fs::perms::owner_read | fs::perms::owner_exec);
  fs::rename(tmp, target);
  return hash;
}

void ModuleStore::put_expecting(const std::string& expected, std::span<const std::byte> bytes) {
  std::string actual = sha256_hex(bytes);
  if (actual != expected)
    throw Error(ErrorCategory::invalid_argument,
                "module bytes hash to " + actual + ", not the expected " + expected);
  put(bytes);
}

std::optional<fs::path> ModuleStore::verified_path(const std::string& hash) const {
  fs::path p = path_of(hash);
  if (!fs::exists(p)) return std::nullopt;
  if (sha256_file(p) != hash) {
    std::error_code ec;
    fs::remove(p, ec);
    throw Error(ErrorCategory::failed,
                "stored module " + p.string() + " does not match its hash; it was removed");
  }
  return p;
}

std::string read_verified_file(const fs::path& path, const std::string& expected_hash) {
  std::ifstream in(path, std::ios::binary);
  if (!in) throw Error(ErrorCategory::invalid_argument, "cannot read " + path.string());
  std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
  std::string actual = sha256_hex(std::as_bytes(std::span(bytes)));
  if (actual != expected_hash)
    throw Error(ErrorCategory::invalid_argument, "refusing to load " + path.string() +
                                                     ": its SHA-256 is " + actual + ", expected " +
                                                     expected_hash);
  return bytes;
}

ModuleFn load_verified_module(const fs::path& path, const std::string& expected_hash,
                              const std::string& module_name, Registry& registry) {
  std::string actual = sha256_file(path);
  if (actual != expected_hash)
    throw Error(ErrorCategory::invalid_argument, "refusing to load " + path.string() +
                                                     ": its SHA-256 is " + actual + ", expected " +
                                                     expected_hash);
  ModuleFn entry = open_module(path, module_name);
  entry(registry);
  return entry;
}

}  // namespace atl::runtime
