#include "atoll/serialization.hpp"

#include <cxxabi.h>

#include <cstdio>
#include <cstdlib>
#include <memory>

#include "atoll/actor.hpp"
#include "atoll/detail/invoke.hpp"
#include "atoll/ids.hpp"
#include "atoll/object_ref.hpp"

namespace atl {

std::string format_id(std::uint64_t owner, std::uint64_t sequence) {
  char text[40];
  std::snprintf(text, sizeof text, "%016llx:%016llx", static_cast<unsigned long long>(owner),
                static_cast<unsigned long long>(sequence));
  return text;
}

}  // namespace atl

namespace atl::detail {

msgpack::zone& scratch_zone() {
  // Decoding happens on every thread that runs tasks; one reusable zone per thread avoids an
  // allocation per value. It is cleared before each decode and never used re-entrantly.
  thread_local msgpack::zone zone(1024);
  return zone;
}

std::string demangle(const char* mangled) {
  int status = 0;
  std::unique_ptr<char, void (*)(void*)> out(
      abi::__cxa_demangle(mangled, nullptr, nullptr, &status), std::free);
  return status == 0 && out ? std::string(out.get()) : std::string(mangled);
}

void throw_decode_error(const std::type_info& type, const char* reason) {
  throw SerializationError("cannot decode the value as " + demangle(type.name()) + ": " + reason);
}

void throw_arity_error(std::size_t expected, std::size_t got) {
  throw Error(ErrorCategory::invalid_argument,
              "expected " + std::to_string(expected) + " arguments, got " + std::to_string(got));
}

void throw_arg_kind_error(std::size_t index, const char* expected) {
  throw Error(ErrorCategory::invalid_argument,
              "argument " + std::to_string(index) + " must be " + expected);
}

void throw_null_handle_error(std::size_t index) {
  throw Error(ErrorCategory::invalid_argument,
              "argument " + std::to_string(index) + " is a null ObjectRef or ActorHandle");
}

void throw_null_ref() {
  throw Error(ErrorCategory::invalid_argument, "null ObjectRef or ActorHandle");
}

void throw_creator_reused() {
  throw Error(ErrorCategory::invalid_argument,
              "remote() was already called on this ActorCreator; call rt.actor<T>(...) again");
}

void throw_unregistered_method(const ActorClassEntry& cls) {
  throw Error(ErrorCategory::invalid_argument,
              "method not registered for actor class '" + cls.name + "'");
}

}  // namespace atl::detail
