#pragma once
// Delivers the agent's outbox (one JSON file per phase report, written by the lifecycle)
// to the controller's ReportService over gRPC, in order, retrying with backoff. The boot
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
};
Result<AgentConfig> parse_agent_config(std::string_view json, std::string_view source);
inline constexpr const char* k_agent_config = "etc/fleet-agent/agent.json";

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
};

// Sends every outbox file, oldest first. A refused report (bad token) stops at once with
// Errc::invalid_input; an unreachable controller is retried until give_up_after
// (Errc::timeout). Delivered files are removed and their sequence noted in outbox/sent.
Result<SendResult> send_outbox(const BoardPaths& paths, Disk& disk, const AgentConfig& config,
                               const SendOptions& options);

}  // namespace fleet::agent
