#pragma once
// The controller's ReportService: boards report each phase of an update here, over TLS
// only (a certificate from fleetctl's CA, controller/tls). Every call must carry the
// board's token for its rollout ("authorization: Bearer TOKEN"), compared in constant
// time; anything else is refused and logged. A replay (a sequence already accepted for the
// board in that rollout, as recorded in the state database, so a restart does not forget)
// is refused with ALREADY_EXISTS and changes nothing: the agent takes that as delivered.
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"
#include "common/tls.hpp"
#include "controller/store/store.hpp"
#include "proto/fleet.pb.h"

namespace grpc {
class Server;
}

namespace fleet::controller {

enum class TokenCheck {
  accepted,
  unknown_board,  // no token for this board in this rollout
  wrong_token,    // not this board's token (another board's, a guess, none)
  other_rollout,  // the board's token, on a report of another rollout
};
const char* token_check_name(TokenCheck c);

// Who may report: tokens, each bound to one board and one rollout (a rollout's server
// holds one per board; a test may hold several rollouts). Pure.
class TokenBook {
 public:
  void add(const std::string& board, const std::string& rollout_id, const std::string& token);
  // A report of (board, rollout) needs that pair's token. The token is what is checked
  // first: only a holder of one of the board's tokens learns that its report is of a
  // rollout this book has no token for (other_rollout).
  TokenCheck check(std::string_view board, std::string_view rollout_id, std::string_view token) const;

 private:
  // board -> rollout -> token
  std::map<std::string, std::map<std::string, std::string, std::less<>>, std::less<>> entries_;
};

// A report as the state database keeps it: its checks as a fleet.v1.Verification and its
// throughput as a fleet.v1.Throughput, in the codec's JSON. Pure.
Result<store::ReportRow> report_row(const fleet::v1::PhaseReport& report, std::int64_t at_ms);

struct ReportServerOptions {
  std::string address;           // HOST:PORT to listen on ("127.0.0.1:0" picks a free port)
  tls::ServerIdentity identity;  // from tls::Authority::issue_server()
};

class ReportServer {
 public:
  // Called after a report was accepted and stored (a live view, a test).
  using Observer = std::function<void(const fleet::v1::PhaseReport&)>;

  static Result<std::unique_ptr<ReportServer>> start(const ReportServerOptions& options, TokenBook tokens,
                                                     store::Store& store, Observer on_accepted = {});
  ~ReportServer();

  int port() const { return port_; }
  std::vector<std::string> refusals() const;  // "board 'b1' (rollout 'r1'): wrong token, from ipv4:..." ...
  void stop();

  class Impl;

 private:
  ReportServer() = default;
  std::unique_ptr<Impl> impl_;
  std::unique_ptr<grpc::Server> server_;
  int port_ = 0;
};

}  // namespace fleet::controller
