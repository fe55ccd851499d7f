#include "controller/reports/report_server.hpp"

#include <grpcpp/grpcpp.h>

#include "proto/fleet.grpc.pb.h"

namespace fleet::controller {

class ReportServer::Impl final : public fleet::v1::ReportService::Service {
 public:
  Impl(Authorizer authorize, Sink sink) : authorize_(std::move(authorize)), sink_(std::move(sink)) {}

  grpc::Status Report(grpc::ServerContext* ctx, const fleet::v1::PhaseReport* report,
                      fleet::v1::ReportAck* ack) override {
    const std::string who = "board '" + report->board_id() + "' (rollout '" + report->rollout_id() + "')";
    std::string token;
    auto md = ctx->client_metadata().find("authorization");
    if (md != ctx->client_metadata().end()) {
      std::string value(md->second.data(), md->second.size());
      if (value.starts_with("Bearer ")) token = value.substr(7);
    }
    if (report->board_id().empty()) return refuse("a report without a board id from " + ctx->peer(), grpc::StatusCode::INVALID_ARGUMENT);
    if (token.empty() || !authorize_(report->board_id(), report->rollout_id(), token)) {
      return refuse(who + ": bad or missing token, from " + ctx->peer(), grpc::StatusCode::UNAUTHENTICATED);
    }
    {
      std::lock_guard lock(mu_);
      auto& last = last_sequence_[report->board_id()];
      if (report->sequence() <= last) {
        ack->set_accepted(true);
        ack->set_reason("replay of sequence " + std::to_string(report->sequence()) + " ignored");
        return grpc::Status::OK;
      }
      last = report->sequence();
    }
    sink_(*report);
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
    refusals_.push_back(why);
    return grpc::Status(code, why);
  }

  Authorizer authorize_;
  Sink sink_;
  mutable std::mutex mu_;
  std::map<std::string, std::uint64_t> last_sequence_;
  std::vector<std::string> refusals_;
};

Result<std::unique_ptr<ReportServer>> ReportServer::start(const std::string& address, Authorizer authorize, Sink sink) {
  std::unique_ptr<ReportServer> s(new ReportServer());
  s->impl_ = std::make_unique<Impl>(std::move(authorize), std::move(sink));
  grpc::ServerBuilder builder;
  builder.AddListeningPort(address, grpc::InsecureServerCredentials(), &s->port_);
  builder.RegisterService(s->impl_.get());
  s->server_ = builder.BuildAndStart();
  if (!s->server_ || s->port_ == 0) return fail(Errc::io, "cannot listen on " + address + " for board reports");
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
