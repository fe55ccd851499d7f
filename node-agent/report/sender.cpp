#include "node-agent/report/sender.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/rpc/rpc.hpp"
#include "common/tls.hpp"
#include "proto/fleet.grpc.pb.h"

namespace fleet::agent {
namespace {

using nlohmann::json;

std::optional<fleet::v1::Phase> wire_phase(const std::string& name) {
  fleet::v1::Phase p{};
  if (!fleet::v1::Phase_Parse(name, &p)) return std::nullopt;
  return p;
}

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
  const std::string where(source);
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::parse, where + ": not a JSON object");
  fleet::v1::PhaseReport r;
  try {
    auto phase = wire_phase(j.at("phase").get<std::string>());
    if (!phase) return fail(Errc::parse, where + ": unknown phase '" + j.at("phase").get<std::string>() + "'");
    r.set_phase(*phase);
    r.set_board_id(j.at("board_id").get<std::string>());
    r.set_rollout_id(j.value("rollout_id", ""));
    r.set_running_release(j.value("running_release", ""));
    r.set_target_release(j.value("target_release", ""));
    r.set_message(j.value("message", ""));
    r.set_sequence(j.at("sequence").get<std::uint64_t>());
    r.set_phase_entered_unix_ms(j.value("phase_entered_unix_ms", std::int64_t{0}));
    r.set_mem_total_kb(j.value("mem_total_kb", std::uint64_t{0}));
    r.set_mem_available_kb(j.value("mem_available_kb", std::uint64_t{0}));
    for (const auto& c : j.value("checks", json::array())) {
      auto* check = r.add_checks();
      check->set_property(c.at("property").get<std::string>());
      check->set_expected(c.at("expected").get<std::string>());
      check->set_actual(c.at("actual").get<std::string>());
      check->set_pass(c.at("pass").get<bool>());
      check->set_detail(c.value("detail", ""));
      check->set_warning(c.value("warning", ""));
    }
    if (j.contains("throughput") && j["throughput"].is_object()) {
      const json& t = j["throughput"];
      auto* w = r.mutable_throughput();
      w->set_shape(t.value("shape", ""));
      w->set_tokens_per_s(t.value("tokens_per_s", 0.0));
      w->set_effective_gbps(t.value("effective_gbps", 0.0));
      w->set_read_gbps(t.value("read_gbps", 0.0));
      w->set_read_gbps_nohuge(t.value("read_gbps_nohuge", 0.0));
      w->set_threads(t.value("threads", 0u));
      w->set_dot_path(t.value("dot_path", ""));
      w->set_numa_nodes(t.value("numa_nodes", 0u));
      w->set_bytes_per_token(t.value("bytes_per_token", std::uint64_t{0}));
      w->set_model(t.value("model", ""));
      w->set_llama_pp_ts(t.value("llama_pp_ts", 0.0));
      w->set_llama_pp_stddev(t.value("llama_pp_stddev", 0.0));
      w->set_llama_tg_ts(t.value("llama_tg_ts", 0.0));
      w->set_llama_tg_stddev(t.value("llama_tg_stddev", 0.0));
      w->set_note(t.value("note", ""));
      if (t.contains("temperature_c")) w->set_temperature_c(t.at("temperature_c").get<double>());
      if (t.contains("undervoltage")) w->set_undervoltage(t.at("undervoltage").get<bool>());
      if (t.contains("cpu_mhz")) w->set_cpu_mhz(t.at("cpu_mhz").get<std::uint32_t>());
      if (t.contains("cpu_max_mhz")) w->set_cpu_max_mhz(t.at("cpu_max_mhz").get<std::uint32_t>());
    }
  } catch (const json::exception& e) {
    return fail(Errc::parse, where + ": " + e.what());
  }
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
