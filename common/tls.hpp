#pragma once
// What the agent and the controller agree on for TLS (the controller's CA and the name in
// its certificates live in controller/tls): the board checks the controller against one CA
// certificate, fleetctl's own, and never against the system's roots.
#include <string>
#include <string_view>

#include "common/error.hpp"

namespace fleet::tls {

// The DNS name every certificate of the controller carries, and the name a client checks
// (gRPC's ssl_target_name_override) whatever address it dials: a board reaches the
// controller as 10.0.2.2 under QEMU, a LAN address or a host name, none of which the
// controller can know when it issues its certificate.
inline constexpr std::string_view k_controller_name = "fleetctl-controller";

// A key and a certificate a server presents (the controller's, issued by its CA).
struct ServerIdentity {
  std::string key_pem;
  std::string cert_pem;
};

struct CaCertificate {
  std::string pem;          // exactly the one certificate, as PEM
  std::string subject;      // "CN=fleetctl CA 3f2a..." for messages
  std::string fingerprint;  // sha256 of the DER, hex, lowercase: what an operator compares
};

// One X.509 certificate in PEM that is a CA (basicConstraints CA:TRUE, its own issuer).
// Anything else (a key, a server certificate, two certificates, garbage) is refused naming
// `source`. Pure.
Result<CaCertificate> parse_ca_certificate(std::string_view pem, std::string_view source);

}  // namespace fleet::tls
