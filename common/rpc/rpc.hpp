#pragma once
// gRPC over TLS between the boards and the controller, the way both sides agree on:
// the server presents a certificate issued by fleetctl's CA for tls::k_controller_name;
// the client trusts that one CA (never the system's roots, never plaintext) and checks
// that name whatever address it dials.
#include <grpcpp/channel.h>
#include <grpcpp/security/credentials.h>
#include <grpcpp/security/server_credentials.h>
#include <grpcpp/support/status.h>

#include <memory>
#include <string>

#include "common/error.hpp"
#include "common/tls.hpp"

namespace fleet::rpc {

// A channel to a controller at `address` (HOST:PORT) that accepts only a certificate
// from the CA in `ca_pem`. An empty `ca_pem` is refused: gRPC would take the system's
// roots in its place.
Result<std::shared_ptr<grpc::Channel>> controller_channel(const std::string& address, const std::string& ca_pem);

// What a controller's server listens with: TLS with `identity`, no client certificate
// (boards and dashboards prove themselves with tokens).
std::shared_ptr<grpc::ServerCredentials> server_credentials(const tls::ServerIdentity& identity);

// A call that failed because the TLS handshake did (the server's certificate is not from
// our CA, or the server does not speak TLS), as far as gRPC's message says so: not worth
// retrying, unlike a controller that is down.
bool is_handshake_failure(const grpc::Status& status);

// The metadata key and prefix a token travels in: "authorization: Bearer TOKEN".
inline constexpr const char* k_auth_key = "authorization";
inline constexpr std::string_view k_bearer = "Bearer ";

}  // namespace fleet::rpc
