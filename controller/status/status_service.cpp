#include "controller/status/status_service.hpp"

#include <grpcpp/grpcpp.h>

#include <cmath>
#include <cstdio>
#include <thread>

#include "common/rpc/rpc.hpp"
#include "controller/tls/secret.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.grpc.pb.h"

namespace fleet::controller {

Result<fleet::v1::Verification> stored_verification(const store::ReportRow& r) {
  const std::string source = "report " + std::to_string(r.sequence) + " of board " + r.board;
  if (r.checks_json.empty()) return fleet::v1::Verification{};
  // Databases written before the Verification message hold the bare list of checks.
  if (r.checks_json.front() == '[') return wire::parse<fleet::v1::Verification>("{\"checks\":" + r.checks_json + "}", source);
  return wire::parse<fleet::v1::Verification>(r.checks_json, source);
}

std::optional<double> throughput_change(const fleet::v1::Throughput& t) {
  // The trial's figure of the same kind as the baseline's (a report is not trusted to be sane).
  const bool llama = t.baseline_measured_by().starts_with("llama-bench");
  const double now = llama ? t.llama_tg_ts() : t.tokens_per_s();
  const double base = t.baseline_tokens_per_s();
  if (!std::isfinite(base) || !std::isfinite(now) || base <= 0 || now <= 0) return std::nullopt;
  return (now - base) / base;
}

std::string throughput_change_text(const fleet::v1::Throughput& t) {
  auto c = throughput_change(t);
  if (!c) return "";
  char buf[48];
  std::snprintf(buf, sizeof buf, "%+.1f%% vs ", 100 * *c);
  return buf + t.baseline_release();
}

std::optional<WeightsThp> weights_thp(const fleet::v1::Throughput& t) {
  const std::string& a = t.hugepage_advice();
  const double share = t.weights_huge_fraction();
  if ((a != "none" && a != "madvise" && a != "nohugepage") || !std::isfinite(share) || share < 0 || share > 1) {
    return std::nullopt;
  }
  return WeightsThp{a, share};
}

Result<fleet::v1::ListModelsResponse> list_models(store::Store& store, const std::string& name) {
  fleet::v1::ListModelsResponse out;
  for (const auto& m : FLEET_TRY(store.models())) {
    if (!name.empty() && m.name != name) continue;
    auto* h = out.add_models();
    h->set_board(m.board);
    h->set_name(m.name);
    h->set_path(m.path);
    h->set_size_bytes(static_cast<std::uint64_t>(std::max<std::int64_t>(0, m.size)));
    h->set_sha256(m.sha256);
    h->set_push_id(m.push_id);
    h->set_updated_unix_ms(m.at_ms);
  }
  return out;
}

fleet::v1::BoardStatus board_status(store::Store& store, const store::BoardRow& b) {
  fleet::v1::BoardStatus s;
  s.set_board(b.board);
  s.set_rollout_id(b.rollout_id);
  s.set_wave(b.wave);
  s.set_step(vocab::name(b.step));
  s.set_outcome(vocab::name(b.outcome));
  s.set_kernel_release(b.running_release);
  s.set_message(b.message);
  s.set_updated_unix_ms(b.updated_ms);
  if (auto reports = store.reports(b.board, 20)) {
    if (!reports->empty()) s.set_last_report_unix_ms(reports->front().at_ms);
    for (const auto& r : *reports) {
      if (s.kernel_release().empty()) s.set_kernel_release(r.running_release);
      auto v = stored_verification(r);
      if (!v) {
        // The newest verification cannot be read: said where people look, and no older one
        // shown in its place as if it were current.
        s.set_message(s.message().empty() ? v.error().message : s.message() + "; " + v.error().message);
        break;
      }
      if (v->checks().empty()) continue;
      *s.mutable_checks() = v->checks();
      if (!r.throughput_json.empty()) {
        auto t = wire::parse<fleet::v1::Throughput>(r.throughput_json, "report " + std::to_string(r.sequence) + " of board " + r.board);
        if (t) *s.mutable_throughput() = std::move(*t);
        else s.set_message(s.message().empty() ? t.error().message : s.message() + "; " + t.error().message);
      }
      break;
    }
  }
  return s;
}

void fill_rollout(store::Store& st, const store::RolloutRow& r, fleet::v1::RolloutStatus* out, bool boards) {
  out->set_id(r.id);
  out->set_kernel_release(r.kernel_release);
  out->set_state(vocab::name(r.state));
  out->set_message(r.message);
  out->set_serial(r.serial);
  out->set_max_fail(r.max_fail);
  out->set_started_unix_ms(r.started_ms);
  out->set_signed_by(r.signed_by);
  if (boards) {
    if (auto rows = st.boards(r.id)) {
      for (const auto& b : *rows) *out->add_boards() = board_status(st, b);
    }
  }
}

namespace {

grpc::Status io_error(const Error& e) { return grpc::Status(grpc::StatusCode::UNAVAILABLE, e.message); }

// Runs for every call before its handler, whatever the method: a method added later cannot
// forget the check.
class TokenProcessor final : public grpc::AuthMetadataProcessor {
 public:
  explicit TokenProcessor(std::string token) : token_(std::move(token)) {}
  bool IsBlocking() const override { return false; }  // a comparison: no need for a thread
  grpc::Status Process(const InputMetadata& md, grpc::AuthContext*, OutputMetadata* consumed,
                       OutputMetadata*) override {
    auto it = md.find(rpc::k_auth_key);
    if (it != md.end()) {
      std::string_view value(it->second.data(), it->second.size());
      if (value.starts_with(rpc::k_bearer) && tls::same_secret(value.substr(rpc::k_bearer.size()), token_)) {
        consumed->insert({rpc::k_auth_key, std::string(value)});  // handlers never see the token
        return grpc::Status::OK;
      }
    }
    return grpc::Status(grpc::StatusCode::UNAUTHENTICATED,
                        "the status service needs its token (authorization: Bearer TOKEN; fleetctl serve prints "
                        "where the token file is)");
  }

 private:
  const std::string token_;
};

}  // namespace

class StatusServer::Impl final : public fleet::v1::StatusService::Service {
 public:
  explicit Impl(std::unique_ptr<store::Store> st) : store_(std::move(st)) {}

  grpc::Status ListBoards(grpc::ServerContext*, const fleet::v1::ListBoardsRequest*,
                          fleet::v1::ListBoardsResponse* out) override {
    auto rows = store_->latest_boards();
    if (!rows) return io_error(rows.error());
    for (const auto& b : *rows) *out->add_boards() = board_status(*store_, b);
    return grpc::Status::OK;
  }

  grpc::Status ListModels(grpc::ServerContext*, const fleet::v1::ListModelsRequest* req,
                          fleet::v1::ListModelsResponse* out) override {
    auto models = list_models(*store_, req->name());
    if (!models) return io_error(models.error());
    *out = std::move(*models);
    return grpc::Status::OK;
  }

  grpc::Status ListRollouts(grpc::ServerContext*, const fleet::v1::ListRolloutsRequest* req,
                            fleet::v1::ListRolloutsResponse* out) override {
    auto rows = store_->rollouts(req->limit() > 0 ? req->limit() : 20);
    if (!rows) return io_error(rows.error());
    for (const auto& r : *rows) fill_rollout(*store_, r, out->add_rollouts(), false);
    return grpc::Status::OK;
  }

  grpc::Status GetRollout(grpc::ServerContext*, const fleet::v1::GetRolloutRequest* req,
                          fleet::v1::RolloutStatus* out) override {
    auto r = store_->rollout(req->id());
    if (!r) return io_error(r.error());
    if (!*r) return grpc::Status(grpc::StatusCode::NOT_FOUND, "no rollout " + req->id());
    fill_rollout(*store_, **r, out, true);
    return grpc::Status::OK;
  }

  grpc::Status Watch(grpc::ServerContext* ctx, const fleet::v1::WatchRequest* req,
                     grpc::ServerWriter<fleet::v1::RolloutEvent>* writer) override {
    std::int64_t since = store::now_ms();
    // Bounded by the caller: it ends when the client cancels or the server stops.
    while (!ctx->IsCancelled() && !stopping_) {
      auto rows = store_->boards_changed_since(since, req->rollout_id());
      if (!rows) return io_error(rows.error());
      for (const auto& b : *rows) {
        since = std::max(since, b.updated_ms);
        fleet::v1::RolloutEvent ev;
        ev.set_unix_ms(b.updated_ms);
        *ev.mutable_board() = board_status(*store_, b);
        if (!writer->Write(ev)) return grpc::Status::OK;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(300));
    }
    return grpc::Status::OK;
  }

  std::atomic<bool> stopping_{false};

 private:
  std::unique_ptr<store::Store> store_;
};

Result<std::unique_ptr<StatusServer>> StatusServer::start(const StatusServerOptions& options,
                                                          const std::filesystem::path& state_db) {
  if (options.token.empty()) return fail(Errc::invalid_input, "the status service needs a token");
  if (options.identity.cert_pem.empty() || options.identity.key_pem.empty()) {
    return fail(Errc::invalid_input, "the status service needs a certificate from the controller's CA (no plaintext)");
  }
  auto st = FLEET_TRY(store::Store::open(state_db));
  std::unique_ptr<StatusServer> s(new StatusServer());
  s->impl_ = std::make_unique<Impl>(std::move(st));
  auto creds = rpc::server_credentials(options.identity);
  creds->SetAuthMetadataProcessor(std::make_shared<TokenProcessor>(options.token));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(options.address, creds, &s->port_);
  builder.RegisterService(s->impl_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) {
    return fail(Errc::io, "cannot listen on " + options.address + " for status (in use? see --listen)");
  }
  return s;
}

StatusServer::~StatusServer() { stop(); }

void StatusServer::wait() {
  if (server_) server_->Wait();
}

void StatusServer::stop() {
  if (server_) {
    impl_->stopping_ = true;
    server_->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(2));
    server_.reset();
  }
}

}  // namespace fleet::controller
