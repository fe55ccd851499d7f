#pragma once
// The controller's ReportService: boards report each phase of an update here. Every call
// must carry the board's token for its rollout ("authorization: Bearer TOKEN"); anything
// else is refused and logged. Replays (a sequence already seen for the board) are
// acknowledged but not passed on, so an agent that resends after a lost ack does no harm.
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "proto/fleet.pb.h"

namespace grpc {
class Server;
}

namespace fleet::controller {

class ReportServer {
 public:
  using Authorizer = std::function<bool(const std::string& board_id, const std::string& rollout_id,
                                        const std::string& token)>;
  using Sink = std::function<void(const fleet::v1::PhaseReport&)>;

  // Listens on `address` ("127.0.0.1:0" picks a free port).
  static Result<std::unique_ptr<ReportServer>> start(const std::string& address, Authorizer authorize, Sink sink);
  ~ReportServer();

  int port() const { return port_; }
  std::vector<std::string> refusals() const;  // "board b1: bad token" ...
  void stop();

  class Impl;

 private:
  ReportServer() = default;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace fleet::controller
