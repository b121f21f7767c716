#include "transport/data_errors.hpp"

#include <asio/error.hpp>
#include <string>

#include "transport/byte_stream.hpp"

namespace atl::transport {

std::string_view to_string(DataBackend backend) noexcept {
  return backend == DataBackend::ucx ? "ucx" : "tcp";
}

ErrorCategory category_of(const asio::error_code& ec) noexcept {
  namespace e = asio::error;
  if (ec == e::eof || ec == e::connection_reset || ec == e::connection_aborted ||
      ec == e::broken_pipe || ec == e::not_connected || ec == e::shut_down ||
      ec == e::connection_refused || ec == e::host_unreachable || ec == e::network_unreachable ||
      ec == e::network_down || ec == e::network_reset)
    return ErrorCategory::disconnected;
  if (ec == e::timed_out) return ErrorCategory::timed_out;
  if (ec == e::operation_aborted) return ErrorCategory::cancelled;
  if (ec == e::no_memory || ec == e::no_buffer_space || ec == e::no_descriptors ||
      ec == e::try_again)
    return ErrorCategory::overloaded;
  if (ec == e::invalid_argument || ec == e::address_in_use || ec == e::access_denied ||
      ec == e::host_not_found || ec == e::host_not_found_try_again || ec == e::no_data ||
      ec == e::service_not_found || ec == e::address_family_not_supported)
    return ErrorCategory::invalid_argument;
  return ErrorCategory::failed;
}

Error error_from_asio(const asio::error_code& ec, std::string_view what) {
  std::string message(what);
  message += ": ";
  message += ec == asio::error::eof ? std::string("the peer closed the connection") : ec.message();
  return Error(category_of(ec), message);
}

}  // namespace atl::transport
