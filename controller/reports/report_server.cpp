#include "controller/reports/report_server.hpp"

#include "common/text.hpp"

#include <grpcpp/grpcpp.h>

#include <algorithm>
#include <mutex>
#include <nlohmann/json.hpp>

#include "common/rpc/rpc.hpp"
#include "controller/tls/secret.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.grpc.pb.h"

namespace fleet::controller {

const char* token_check_name(TokenCheck c) {
  switch (c) {
    case TokenCheck::accepted: return "accepted";
    case TokenCheck::unknown_board: return "no token for this board in this rollout";
    case TokenCheck::wrong_token: return "wrong or missing token";
    case TokenCheck::other_rollout: return "the board's token, on a report of another rollout";
  }
  return "?";
}

void TokenBook::add(const std::string& board, const std::string& rollout_id, const std::string& token) {
  entries_[board][rollout_id] = token;
}

TokenCheck TokenBook::check(std::string_view board, std::string_view rollout_id, std::string_view token) const {
  auto it = entries_.find(board);
  if (it == entries_.end()) return TokenCheck::unknown_board;
  auto own = it->second.find(rollout_id);
  if (own != it->second.end()) return tls::same_secret(token, own->second) ? TokenCheck::accepted : TokenCheck::wrong_token;
  for (const auto& [rollout, t] : it->second) {
    if (tls::same_secret(token, t)) return TokenCheck::other_rollout;
  }
  return TokenCheck::wrong_token;
}

Result<store::ReportRow> report_row(const fleet::v1::PhaseReport& r, std::int64_t at_ms) {
  // The verification is kept as the agent's Verification message, through the one codec.
  std::string verification;
  if (r.checks_size() > 0) {
    fleet::v1::Verification v;
    *v.mutable_checks() = r.checks();
    v.set_ok(std::all_of(r.checks().begin(), r.checks().end(), [](const auto& c) { return c.pass(); }));
    v.mutable_memory()->set_mem_total_kb(r.mem_total_kb());
    v.mutable_memory()->set_mem_available_kb(r.mem_available_kb());
    verification = FLEET_TRY(with_context(wire::to_json(v), "board " + text::quoted(r.board_id())));
  }
  std::string throughput;
  if (r.has_throughput()) throughput = FLEET_TRY(with_context(wire::to_json(r.throughput()), "board " + text::quoted(r.board_id())));
  return store::ReportRow{r.board_id(), r.rollout_id(), r.sequence(), fleet::v1::Phase_Name(r.phase()), r.running_release(),
                          r.message(), verification, at_ms, throughput};
}

class ReportServer::Impl final : public fleet::v1::ReportService::Service {
 public:
  Impl(TokenBook tokens, store::Store& store, Observer observer)
      : tokens_(std::move(tokens)), store_(store), observer_(std::move(observer)) {}

  grpc::Status Report(grpc::ServerContext* ctx, const fleet::v1::PhaseReport* report,
                      fleet::v1::ReportAck* ack) override {
    // Quoted: what an unauthenticated caller sent stays one line in the log.
    const std::string who = "board " + text::quoted(report->board_id()) + " (rollout " + text::quoted(report->rollout_id()) + ")";
    std::string token;
    auto md = ctx->client_metadata().find(rpc::k_auth_key);
    if (md != ctx->client_metadata().end()) {
      std::string_view value(md->second.data(), md->second.size());
      if (value.starts_with(rpc::k_bearer)) token = value.substr(rpc::k_bearer.size());
    }
    if (report->board_id().empty()) return refuse("a report without a board id from " + ctx->peer(), grpc::StatusCode::INVALID_ARGUMENT);
    const TokenCheck check = tokens_.check(report->board_id(), report->rollout_id(), token);
    if (check == TokenCheck::other_rollout) {
      // The agent sets such a report aside (FAILED_PRECONDITION) and goes on with the rest.
      return refuse(who + ": " + token_check_name(check) + ", from " + ctx->peer(), grpc::StatusCode::FAILED_PRECONDITION);
    }
    if (check != TokenCheck::accepted) {
      return refuse(who + ": " + token_check_name(check) + ", from " + ctx->peer(), grpc::StatusCode::UNAUTHENTICATED);
    }
    if (report->sequence() == 0) return refuse(who + ": a report without a sequence number", grpc::StatusCode::INVALID_ARGUMENT);
    auto row = report_row(*report, store::now_ms());
    // A text that cannot be written as JSON (not UTF-8) is the board's fault: refused, named.
    if (!row) return refuse(who + ": " + row.error().message, grpc::StatusCode::INVALID_ARGUMENT);
    auto accepted = store_.accept_report(*row);
    if (!accepted) {
      if (accepted.error().code == Errc::invalid_input) {
        return refuse(who + ": " + accepted.error().message, grpc::StatusCode::INVALID_ARGUMENT);
      }
      // The agent retries later; the report stays in its outbox.
      return grpc::Status(grpc::StatusCode::UNAVAILABLE, "cannot record the report: " + accepted.error().message);
    }
    if (!*accepted) {
      return refuse(who + ": replay of sequence " + std::to_string(report->sequence()) +
                        " (already accepted): ignored",
                    grpc::StatusCode::ALREADY_EXISTS);
    }
    if (observer_) observer_(*report);
    ack->set_accepted(true);
    return grpc::Status::OK;
  }

  std::vector<std::string> refusals() const {
    std::lock_guard lock(mu_);
    return refusals_;
  }

 private:
  grpc::Status refuse(const std::string& why, grpc::StatusCode code) {
    std::lock_guard lock(mu_);
    // Anyone who reaches the port can be refused: the log is bounded and keeps the newest.
    if (refusals_.size() >= k_max_refusals) refusals_.erase(refusals_.begin(), refusals_.begin() + k_max_refusals / 2);
    refusals_.push_back(why);
    return grpc::Status(code, why);
  }

  const TokenBook tokens_;
  store::Store& store_;
  Observer observer_;
  mutable std::mutex mu_;
  static constexpr std::size_t k_max_refusals = 1000;
  std::vector<std::string> refusals_;
};

Result<std::unique_ptr<ReportServer>> ReportServer::start(const ReportServerOptions& options, TokenBook tokens,
                                                          store::Store& store, Observer on_accepted) {
  if (options.identity.cert_pem.empty() || options.identity.key_pem.empty()) {
    return fail(Errc::invalid_input, "the report service needs a certificate from the controller's CA (no plaintext)");
  }
  std::unique_ptr<ReportServer> s(new ReportServer());
  s->impl_ = std::make_unique<Impl>(std::move(tokens), store, std::move(on_accepted));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, rpc::server_credentials(options.identity), &s->port_);
  builder.RegisterService(s->impl_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return fail(Errc::io, "cannot listen on " + options.address + " for board reports (in use? see --listen)");
  }
  return s;
}

ReportServer::~ReportServer() { stop(); }

void ReportServer::stop() {
  if (server_) {
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }
}

std::vector<std::string> ReportServer::refusals() const { return impl_->refusals(); }

}  // namespace fleet::controller
