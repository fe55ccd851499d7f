#pragma once
// The StatusService (proto/fleet.proto) over the state database: what `fleetctl status`
// shows, for dashboards. Watch follows the database, so it sees rollouts run by any
// fleetctl process on this machine. TLS only (a certificate from fleetctl's CA), and every
// call, of every method this service has or will have, must carry the service's token
// ("authorization: Bearer TOKEN"): it is checked in gRPC's auth layer, before any handler.
#include <filesystem>
#include <memory>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "common/tls.hpp"
#include "controller/store/store.hpp"
#include "proto/fleet.pb.h"

namespace grpc {
class Server;
}

namespace fleet::controller {

// A board row with the checks of its latest verification report.
fleet::v1::BoardStatus board_status(store::Store& store, const store::BoardRow& row);
// A report's verification as the database keeps it (fleet.v1.Verification; a bare list of
// checks in databases from before that message). Errors name the report and the board.
Result<fleet::v1::Verification> stored_verification(const store::ReportRow& r);
// The trial kernel's figure against the committed kernel's, both measured the same way: 0.079
// is 7.9% faster. nullopt without a baseline. (llama-bench's rate when it ran, else the probe's.)
std::optional<double> throughput_change(const fleet::v1::Throughput& t);
// "+7.9% vs 6.12.49-v8-16k", or "" without a baseline.
std::string throughput_change_text(const fleet::v1::Throughput& t);

// The probe's weights and THP as a report gave them, when sane: the advice ("none",
// "madvise" or "nohugepage") and the share THP backed, in [0, 1]. Anything else (an agent
// from before these fields, a board that answers wrongly) is nullopt: not shown, no series.
struct WeightsThp {
  std::string advice;
  double share = 0;
};
std::optional<WeightsThp> weights_thp(const fleet::v1::Throughput& t);

// The models the state database knows boards hold (all, or those of one file name), as
// ListModels and `fleetctl model list --json` give them.
Result<fleet::v1::ListModelsResponse> list_models(store::Store& store, const std::string& name = "");

// A rollout row as the StatusService sends it, with its boards when `boards` is set.
void fill_rollout(store::Store& store, const store::RolloutRow& row, fleet::v1::RolloutStatus* out, bool boards);

struct StatusServerOptions {
  std::string address;           // HOST:PORT; `fleetctl serve` defaults to loopback
  tls::ServerIdentity identity;  // from tls::Authority::issue_server()
  std::string token;             // what every caller must present
};

class StatusServer {
 public:
  static Result<std::unique_ptr<StatusServer>> start(const StatusServerOptions& options,
                                                     const std::filesystem::path& state_db);
  ~StatusServer();
  int port() const { return port_; }
  void wait();  // until shutdown
  void stop();

  class Impl;

 private:
  StatusServer() = default;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace fleet::controller
