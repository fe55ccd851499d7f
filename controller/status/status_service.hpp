#pragma once
// The StatusService (proto/fleet.proto) over the state database: what `fleetctl status`
// shows, for dashboards. Watch follows the database, so it sees rollouts run by any
// fleetctl process on this machine.
#include <filesystem>
#include <memory>
#include <string>

#include "common/error.hpp"
#include "controller/store/store.hpp"
#include "proto/fleet.pb.h"

namespace grpc {
class Server;
}

namespace fleet::controller {

// A board row with the checks of its latest verification report.
fleet::v1::BoardStatus board_status(store::Store& store, const store::BoardRow& row);

class StatusServer {
 public:
  static Result<std::unique_ptr<StatusServer>> start(const std::string& address, const std::filesystem::path& state_db);
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
