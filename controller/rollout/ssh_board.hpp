#pragma once
// BoardIO over SSH: what the rollout does to a real (or virtual) board.
#include <filesystem>
#include <memory>
#include <string>
#include <vector>

#include "controller/rollout/engine.hpp"
#include "controller/ssh/ssh.hpp"
#include "proto/fleet.pb.h"

namespace fleet::rollout {

struct Payload {
  std::filesystem::path agent;         // static aarch64 fleet-agent
  std::string agent_sha256;
  std::filesystem::path bundle_tar;    // the bundle as one tar file
  std::string bundle_tar_sha256;       // checked on the board after the upload
  std::string build_key;
  std::string report_address;          // HOST:PORT the board's agent reports to
  std::filesystem::path ca_cert;       // the controller's CA certificate (fleet-agent setup --ca)
  std::filesystem::path trust_key;     // a public key the board's agent is set up to trust (empty: none)
  std::string trust_key_id;
};

inline constexpr const char* k_remote_agent = "/usr/local/bin/fleet-agent";
inline constexpr const char* k_remote_bundles = "/var/lib/fleet-agent/bundles";
// Uploads land here, checked, before anything uses them (bundle tars, the staged agent).
inline constexpr const char* k_remote_incoming = "/var/lib/fleet-agent/incoming";

// fleet-agent status --json through the codec; an agent from before AgentStatus (lowercase
// states) has its idle and installed states read too. Errors start with `source`. Pure.
Result<fleet::v1::AgentStatus> read_agent_status(std::string_view text, const std::string& source);
// What fleet-agent status --json (fleet.v1.AgentStatus) tells the rollout. Pure.
AgentView agent_view_of(const fleet::v1::AgentStatus& status);

class SshBoard : public BoardIO {
 public:
  // install_args: more `fleet-agent install` options for this board (bench_install_args).
  SshBoard(ssh::Endpoint endpoint, const Payload& payload, std::vector<std::string> install_args = {})
      : endpoint_(std::move(endpoint)), payload_(payload), install_args_(std::move(install_args)) {}
  Result<void> connect() override;
  Result<Inspection> inspect() override;
  Result<void> push_agent(const std::string& token) override;
  // Uploads the bundle (sha256 checked, unpacked beside the agent's bundles) and, when the
  // board's agent is not ours, the agent to incoming/fleet-agent-SHA256: nothing installed.
  Result<void> push_bundle() override;
  Result<void> install(const std::string& rollout_id) override;
  Result<void> tryboot() override;
  Result<void> rollback() override;
  Result<std::string> boot_id() override;
  Result<AgentView> agent_view() override;

 private:
  Result<ssh::Session*> session();
  Result<bool> agent_is_current(ssh::Session& s);
  Result<void> stage_agent(ssh::Session& s);
  std::string staged_agent() const;
  ssh::Endpoint endpoint_;
  const Payload& payload_;
  std::vector<std::string> install_args_;
  std::unique_ptr<ssh::Session> session_;
  bool agent_current_ = false;
};

}  // namespace fleet::rollout
