#pragma once
// fleetctl's own small certificate authority (OpenSSL), kept in the state folder:
//   tls/ca.pem   the CA certificate; `fleet-agent setup --ca` installs it on every board
//   tls/ca.key   its private key (EC P-256, PKCS#8), mode 0600 from its first byte
// Made on first use. Every gRPC server of the controller (the ReportService of a rollout,
// the StatusService of `fleetctl serve`) presents a certificate it issues at start, for
// the name tls::k_controller_name; that certificate's key lives only in the process.
// P-256 rather than Ed25519: gRPC's TLS stack and every common client (browsers, grpcurl,
// curl) accept ECDSA P-256 server certificates; Ed25519 ones are not.
#include <filesystem>
#include <string>

#include "common/error.hpp"
#include "common/tls.hpp"

namespace fleet::tls {

class Authority {
 public:
  // The CA in `dir`, made there if `dir` does not exist yet. Two fleetctl processes starting
  // at once agree on one CA (the folder appears whole, by rename, or not at all). A key
  // file readable by group or others is refused, not used.
  static Result<Authority> open_or_create(const std::filesystem::path& dir);

  const CaCertificate& certificate() const { return cert_; }
  std::filesystem::path certificate_file() const { return dir_ / "ca.pem"; }
  bool created_now() const { return created_now_; }

  // A fresh P-256 key and a certificate for it, signed by this CA: the DNS names
  // k_controller_name and localhost, the addresses 127.0.0.1 and ::1, for serverAuth.
  Result<ServerIdentity> issue_server() const;

 private:
  Authority() = default;
  std::filesystem::path dir_;
  CaCertificate cert_;
  std::string key_pem_;
  bool created_now_ = false;
};

// A CA for one `fleetctl model push`, made in memory and never written: its certificate goes
// into the push's torrent (node-agent/model/swarm.hpp), so the swarm admits only members it
// certified, and with its key gone at the end of the push, nothing joins that swarm again.
class PushAuthority {
 public:
  // Its certificates are valid from the Unix epoch (a board's clock may be behind) for `days`.
  static Result<PushAuthority> create(const std::string& push_id, int days = 1);
  const std::string& certificate_pem() const { return cert_pem_; }
  // A fresh P-256 key and a certificate for it, for both ends of TLS. Its CN is "*", which
  // libtorrent takes for any torrent this CA signed: the CA is this push's alone, and a
  // model's file name may be longer than a CN's 64 characters. O names `member` (cut to 64).
  Result<ServerIdentity> issue_member(const std::string& member) const;

 private:
  PushAuthority() = default;
  std::string cert_pem_;
  std::string key_pem_;
  int days_ = 1;
};

// The CA's folder for a state database: beside it, `tls/`.
std::filesystem::path authority_dir(const std::filesystem::path& state_db);

}  // namespace fleet::tls
