#include "node-agent/report/sender.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/rpc/rpc.hpp"
#include "common/tls.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.grpc.pb.h"

namespace fleet::agent {
namespace {

using nlohmann::json;

}  // namespace

Result<AgentConfig> parse_agent_config(std::string_view text, std::string_view source) {
  const std::string where(source);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::parse, where + ": not a JSON object");
  AgentConfig c;
  for (auto [key, dest] : {std::pair{"board_id", &c.board_id}, std::pair{"controller", &c.controller},
                           std::pair{"token", &c.token}}) {
    if (!j.contains(key) || !j[key].is_string() || j[key].get<std::string>().empty()) {
      return fail(Errc::invalid_input, where + ": field '" + key + "' must be a non-empty string");
    }
    *dest = j[key].get<std::string>();
  }
  return c;
}

Result<AgentConfig> load_agent_config(const std::filesystem::path& root, Disk& disk) {
  const auto file = root / k_agent_config;
  auto text = disk.read(file);
  if (!text) return fail(Errc::not_found, file.string() + ": no such file (run fleet-agent setup)");
  auto config = FLEET_TRY(parse_agent_config(*text, file.string()));
  const auto ca_file = root / k_agent_ca;
  auto ca = disk.read(ca_file);
  if (!ca) {
    return fail(Errc::not_found, ca_file.string() +
                                     ": no such file; the agent reports only to a controller it can check "
                                     "(run fleet-agent setup --ca with fleetctl's tls/ca.pem)");
  }
  config.ca_pem = FLEET_TRY(tls::parse_ca_certificate(*ca, ca_file.string())).pem;
  return config;
}

Result<fleet::v1::PhaseReport> report_from_json(std::string_view text, std::string_view source) {
  auto r = FLEET_TRY(wire::parse<fleet::v1::PhaseReport>(text, source));
  // The mapping makes every field optional; a report means something only with these.
  const std::string where(source);
  if (r.board_id().empty()) return fail(Errc::parse, where + ": the report has no board_id");
  if (r.phase() == fleet::v1::PHASE_UNSPECIFIED) return fail(Errc::parse, where + ": the report has no known phase");
  if (r.sequence() == 0) return fail(Errc::parse, where + ": the report has no sequence number");
  return r;
}

Result<SendResult> send_outbox(const BoardPaths& paths, Disk& disk, const AgentConfig& config,
                               const SendOptions& options) {
  std::vector<std::filesystem::path> files;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(paths.outbox(), ec)) {
    if (e.path().extension() == ".json") files.push_back(e.path());
  }
  std::sort(files.begin(), files.end());  // zero-padded sequence numbers: oldest first
  SendResult result;
  result.left = static_cast<int>(files.size());
  if (files.empty()) return result;

  auto channel = FLEET_TRY(rpc::controller_channel(config.controller, config.ca_pem));
  auto stub = fleet::v1::ReportService::NewStub(channel);
  const auto deadline = std::chrono::steady_clock::now() + options.give_up_after;
  auto backoff = options.first_backoff;
  for (const auto& file : files) {
    auto text = disk.read(file);
    if (!text) continue;  // sent and removed by a concurrent sender
    auto report = report_from_json(*text, file.string());
    if (!report) {
      // A damaged file must not block the ones behind it: set it aside, keep going.
      FLEET_TRY(disk.rename(file, file.string() + ".bad"));
      --result.left;
      continue;
    }
    report->set_sent_unix_ms(std::chrono::duration_cast<std::chrono::milliseconds>(
                                  std::chrono::system_clock::now().time_since_epoch())
                                  .count());
    bool stale = false;
    for (;;) {
      ++result.attempts;
      grpc::ClientContext ctx;
      ctx.AddMetadata(rpc::k_auth_key, std::string(rpc::k_bearer) + config.token);
      ctx.set_deadline(std::chrono::system_clock::now() + options.rpc_timeout);
      fleet::v1::ReportAck ack;
      grpc::Status status = stub->Report(&ctx, *report, &ack);
      if (status.ok() && ack.accepted()) break;
      if (status.error_code() == grpc::StatusCode::ALREADY_EXISTS) break;  // the controller has it
      if (status.error_code() == grpc::StatusCode::FAILED_PRECONDITION) {
        stale = true;
        break;
      }
      if (rpc::is_handshake_failure(status)) {
        return fail(Errc::mismatch, "the controller at " + config.controller +
                                        " did not prove itself with a certificate from this board's CA (" +
                                        "/" + std::string(k_agent_ca) + "): " + status.error_message() +
                                        "; nothing was sent (is it fleetctl, and was the board set up by it?)");
      }
      if (status.ok() || status.error_code() == grpc::StatusCode::UNAUTHENTICATED ||
          status.error_code() == grpc::StatusCode::PERMISSION_DENIED ||
          status.error_code() == grpc::StatusCode::INVALID_ARGUMENT) {
        return fail(Errc::invalid_input, "the controller at " + config.controller + " refused report " +
                                             std::to_string(report->sequence()) + ": " +
                                             (status.ok() ? ack.reason() : status.error_message()));
      }
      if (std::chrono::steady_clock::now() + backoff > deadline) {
        return fail(Errc::timeout, "the controller at " + config.controller + " is unreachable (" +
                                       status.error_message() + "); " + std::to_string(result.left) +
                                       " reports wait in " + paths.outbox().string());
      }
      std::this_thread::sleep_for(backoff);
      backoff = std::min(backoff * 2, options.max_backoff);
    }
    if (stale) {
      FLEET_TRY(disk.rename(file, file.string() + ".stale"));
      ++result.set_aside;
      --result.left;
      backoff = options.first_backoff;
      continue;
    }
    FLEET_TRY(disk.write_atomic(paths.outbox() / k_sent_marker, std::to_string(report->sequence())));
    FLEET_TRY(disk.remove_all(file));
    ++result.sent;
    --result.left;
    backoff = options.first_backoff;
  }
  return result;
}

}  // namespace fleet::agent
