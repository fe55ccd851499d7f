#include "common/rpc/rpc.hpp"

#include <grpcpp/create_channel.h>
#include <grpcpp/support/channel_arguments.h>

namespace fleet::rpc {

Result<std::shared_ptr<grpc::Channel>> controller_channel(const std::string& address, const std::string& ca_pem) {
  if (ca_pem.empty()) {
    return fail(Errc::invalid_input, "no CA certificate to check the controller at " + address +
                                         " against (fleetctl never talks without TLS)");
  }
  grpc::SslCredentialsOptions ssl;
  ssl.pem_root_certs = ca_pem;
  grpc::ChannelArguments args;
  args.SetSslTargetNameOverride(std::string(tls::k_controller_name));
  return grpc::CreateCustomChannel(address, grpc::SslCredentials(ssl), args);
}

std::shared_ptr<grpc::ServerCredentials> server_credentials(const tls::ServerIdentity& identity) {
  grpc::SslServerCredentialsOptions ssl(GRPC_SSL_DONT_REQUEST_CLIENT_CERTIFICATE);
  ssl.pem_key_cert_pairs.push_back({identity.key_pem, identity.cert_pem});
  return grpc::SslServerCredentials(ssl);
}

bool is_handshake_failure(const grpc::Status& status) {
  if (status.error_code() != grpc::StatusCode::UNAVAILABLE) return false;
  const std::string& m = status.error_message();
  // gRPC 1.51 (Debian 12): "... Ssl handshake failed: SSL_ERROR_SSL: error:0A000086:SSL
  // routines::certificate verify failed"; a plaintext server: "... WRONG_VERSION_NUMBER".
  // Not "handshake failed" alone: a connection reset mid-handshake (SSL_ERROR_SYSCALL) says
  // that too, and is worth retrying; these two are answers that will not change.
  for (const char* sign : {"certificate verify failed", "WRONG_VERSION_NUMBER", "wrong version number"}) {
    if (m.find(sign) != std::string::npos) return true;
  }
  return false;
}

}  // namespace fleet::rpc
