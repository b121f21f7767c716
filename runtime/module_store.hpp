// C++ code shipping: job modules (shared libraries holding a registration function) stored by
// the SHA-256 of their bytes, and loaded only after their bytes are checked against that hash.
//
// A driver names its module; the head keeps the bytes; a node fetches what it lacks into its
// ModuleStore; a worker process loads it with `load_verified_module`. A file whose bytes no longer
// match its name is deleted and refused: a node never runs code whose hash does not match.
//
// Thread-safety: a ModuleStore may be used from several threads and processes (writes are atomic
// renames).
#pragma once

#include <cstddef>
#include <filesystem>
#include <optional>
#include <span>
#include <string>

#include "atoll/registry.hpp"

namespace atl::runtime {

std::string sha256_hex(std::span<const std::byte> bytes);
// Raises Error(failed) when the file cannot be read.
std::string sha256_file(const std::filesystem::path& path);

class ModuleStore {
 public:
  explicit ModuleStore(std::filesystem::path dir);

  // Stores the bytes under their hash (idempotent) and returns the hash.
  std::string put(std::span<const std::byte> bytes);
  // Stores the bytes only if they hash to `expected`; raises Error(invalid_argument) otherwise.
  void put_expecting(const std::string& expected, std::span<const std::byte> bytes);
  // The stored module's path, after re-checking its bytes; nullopt when absent. A file that no
  // longer matches is deleted and raises Error(failed).
  std::optional<std::filesystem::path> verified_path(const std::string& hash) const;

 private:
  std::filesystem::path path_of(const std::string& hash) const;
  std::filesystem::path dir_;
};

// The bytes of `path` (a binding's code), once they hash to `expected_hash`. Raises
// Error(invalid_argument) naming the file when they do not or it cannot be read.
std::string read_verified_file(const std::filesystem::path& path, const std::string& expected_hash);

// Checks that `path` hashes to `expected_hash`, loads it, and runs its `atoll_module_<name>` entry
// point into `registry`. The library stays loaded for the life of the process. Raises
// Error(invalid_argument) naming the library and what failed (hash, dlopen, missing entry point).
// Returns the entry point (the module's registration function).
ModuleFn load_verified_module(const std::filesystem::path& path, const std::string& expected_hash,
                              const std::string& module_name, Registry& registry);

}  // namespace atl::runtime
