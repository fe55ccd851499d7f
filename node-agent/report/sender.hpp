#pragma once
// Delivers the agent's outbox (one JSON file per phase report, written by the lifecycle)
// to the controller's ReportService over gRPC with TLS, in order, retrying with backoff.
// The controller must present a certificate from the CA that `fleet-agent setup --ca`
// installed (/etc/fleet-agent/ca.pem): no system roots, no plaintext fallback. The boot
// flow never waits for this: boot-check writes the outbox, `send-reports` runs beside it.
#include <chrono>
#include <string>
#include <string_view>

#include "common/error.hpp"
#include "proto/fleet.pb.h"
#include "node-agent/lifecycle/disk.hpp"
#include "node-agent/lifecycle/lifecycle.hpp"

namespace fleet::agent {

// /etc/fleet-agent/agent.json, written by fleetctl when it first reaches the board.
struct AgentConfig {
  std::string board_id;
  std::string controller;  // host:port of fleetctl's report service
  std::string token;       // this board's secret; sent as "authorization: Bearer TOKEN"
  std::string ca_pem;      // the controller's CA (k_agent_ca), not in agent.json
};
Result<AgentConfig> parse_agent_config(std::string_view json, std::string_view source);
inline constexpr const char* k_agent_config = "etc/fleet-agent/agent.json";
// The controller's CA certificate, the only one the agent trusts for the controller.
inline constexpr const char* k_agent_ca = "etc/fleet-agent/ca.pem";

// agent.json and the CA certificate under the board's root; errors name the file and say
// to run fleet-agent setup.
Result<AgentConfig> load_agent_config(const std::filesystem::path& root, Disk& disk);

// One outbox file as the wire message. Pure.
Result<fleet::v1::PhaseReport> report_from_json(std::string_view json, std::string_view source);

struct SendOptions {
  std::chrono::milliseconds rpc_timeout{5000};
  std::chrono::milliseconds give_up_after{10 * 60 * 1000};  // then exit; the files wait for next time
  std::chrono::milliseconds first_backoff{1000};
  std::chrono::milliseconds max_backoff{60 * 1000};
};

struct SendResult {
  int sent = 0;
  int left = 0;
  int attempts = 0;
  int set_aside = 0;  // reports of another rollout, renamed *.json.stale
};

// Sends every outbox file, oldest first. A refused report (bad token) stops at once with
// Errc::invalid_input; a controller whose certificate is not from the board's CA stops at
// once with Errc::mismatch; an unreachable controller is retried until give_up_after
// (Errc::timeout). Delivered files are removed and their sequence noted in outbox/sent; a
// report the controller already has (ALREADY_EXISTS: a resend after a lost ack) counts as
// delivered. A report of another rollout than the board's token (FAILED_PRECONDITION: a
// leftover of an earlier rollout) is renamed *.json.stale, kept for a person, and the rest
// go on. No CA certificate in `config`: Errc::invalid_input, nothing sent.
Result<SendResult> send_outbox(const BoardPaths& paths, Disk& disk, const AgentConfig& config,
                               const SendOptions& options);

}  // namespace fleet::agent
