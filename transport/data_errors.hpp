// The one adapter from asio::error_code to atl::Error for the data plane (UCX's ucs_status_t has
// its own in ucx_stream.hpp). The category says what to do next: a reset or closed connection is
// `disconnected`, a refused connection too (the peer is not there), a timeout `timed_out`, running
// out of descriptors or buffers `overloaded`, a bad address `invalid_argument`.
//
// Thread-safety: pure functions.
#pragma once

#include <asio/error_code.hpp>
#include <string_view>

#include "atoll/errors.hpp"

namespace atl::transport {

ErrorCategory category_of(const asio::error_code& ec) noexcept;
// "<what>: <the system's message>", with category_of(ec).
Error error_from_asio(const asio::error_code& ec, std::string_view what);

}  // namespace atl::transport
