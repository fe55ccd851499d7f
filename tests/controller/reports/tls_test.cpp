// TLS and tokens on the controller's gRPC services, over real channels on loopback: what a
// board, a controller and a client that are not who they should be get. Each row names
// the wrong party and the refusal expected; every row also checks that nothing reached
// the state database.
#include <grpcpp/grpcpp.h>

#include <catch2/catch.hpp>
#include <functional>

#include "common/rpc/rpc.hpp"
#include "controller/reports/report_server.hpp"
#include "controller/status/status_service.hpp"
#include "controller/tls/authority.hpp"
#include "node-agent/report/sender.hpp"
#include "proto/fleet.grpc.pb.h"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

constexpr const char* k_rollout = "r1";
const std::string k_token_pi1 = "0123456789abcdef0123456789abcdef";
const std::string k_token_pi2 = "fedcba9876543210fedcba9876543210";

agent::SendOptions quick() {
  agent::SendOptions o;
  o.rpc_timeout = std::chrono::milliseconds(2000);
  o.give_up_after = std::chrono::milliseconds(1500);
  o.first_backoff = std::chrono::milliseconds(100);
  o.max_backoff = std::chrono::milliseconds(400);
  return o;
}

// A controller: its CA, its state database, a report server for pi-1 and pi-2 in r1. Its
// folder outlives a restart (stop, then start again on the same files).
struct Controller {
  test::TempDir dir{"fleet-tls"};
  tls::Authority ca = tls::Authority::open_or_create(dir / "tls").value();
  std::unique_ptr<store::Store> store;
  std::unique_ptr<controller::ReportServer> server;

  void start(const tls::ServerIdentity& identity) {
    store = store::Store::open(dir / "fleet.db").value();
    controller::TokenBook tokens;
    tokens.add("pi-1", k_rollout, k_token_pi1);
    tokens.add("pi-2", k_rollout, k_token_pi2);
    auto s = controller::ReportServer::start({"127.0.0.1:0", identity}, tokens, *store);
    REQUIRE(s);
    server = std::move(*s);
  }
  void start() { start(ca.issue_server().value()); }
  void restart() {
    server.reset();
    store.reset();
    start();
  }
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
  size_t stored(const std::string& board) const { return store->reports(board).value().size(); }
};

// A board's outbox with reports 1..n of r1.
struct Board {
  test::TempDir dir{"fleet-tls-board"};
  agent::BoardPaths paths{dir.path()};
  explicit Board(int n, const std::string& board = "pi-1") {
    for (int i = 1; i <= n; ++i) {
      char name[64];
      std::snprintf(name, sizeof name, "var/lib/fleet-agent/outbox/%012d.json", i);
      dir.write(name, R"({"board_id":")" + board + R"(","rollout_id":"r1","phase":"INSTALLED","sequence":)" +
                          std::to_string(i) + "}");
    }
  }
  size_t queued() const {
    size_t n = 0;
    for (const auto& e : std::filesystem::directory_iterator(paths.outbox()))
      n += e.path().extension() == ".json" ? 1 : 0;
    return n;
  }
};

fleet::v1::PhaseReport report(const std::string& board, std::uint64_t sequence) {
  fleet::v1::PhaseReport r;
  r.set_board_id(board);
  r.set_rollout_id(k_rollout);
  r.set_phase(fleet::v1::INSTALLED);
  r.set_sequence(sequence);
  return r;
}

grpc::Status call(const std::shared_ptr<grpc::Channel>& channel, const fleet::v1::PhaseReport& r, const std::string& token) {
  auto stub = fleet::v1::ReportService::NewStub(channel);
  grpc::ClientContext ctx;
  ctx.AddMetadata("authorization", "Bearer " + token);
  ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
  fleet::v1::ReportAck ack;
  return stub->Report(&ctx, r, &ack);
}

}  // namespace

TEST_CASE("the report service refuses the wrong party, over real TLS channels on loopback") {
  struct Row {
    const char* wrong;     // who is not who they should be
    const char* expected;  // the refusal
    std::function<void(Controller&, Controller& other)> run;
  };
  const std::vector<Row> rows = {
      {"a board with another controller's CA", "the agent stops at once: the controller did not prove itself",
       [](Controller& c, Controller& other) {
         c.start();
         Board board(2);
         agent::RealDisk disk;
         agent::AgentConfig cfg{"pi-1", c.address(), k_token_pi1, other.ca.certificate().pem};
         auto r = agent::send_outbox(board.paths, disk, cfg, quick());
         REQUIRE_FALSE(r);
         CHECK(r.error().code == Errc::mismatch);
         CHECK_THAT(r.error().message, Catch::Contains("did not prove itself") && Catch::Contains("ca.pem"));
         CHECK(board.queued() == 2);
       }},
      {"a controller with a certificate from another CA", "the board's agent refuses it",
       [](Controller& c, Controller& other) {
         c.start(other.ca.issue_server().value());  // a certificate for the right name, from the wrong CA
         Board board(1);
         agent::RealDisk disk;
         agent::AgentConfig cfg{"pi-1", c.address(), k_token_pi1, c.ca.certificate().pem};
         auto r = agent::send_outbox(board.paths, disk, cfg, quick());
         REQUIRE_FALSE(r);
         CHECK(r.error().code == Errc::mismatch);
         CHECK(board.queued() == 1);
         // The token never went out: the server saw no call at all.
         CHECK(c.server->refusals().empty());
       }},
      {"a plaintext client", "the connection fails before any call: no report, no refusal logged",
       [](Controller& c, Controller&) {
         c.start();
         auto plain = grpc::CreateChannel(c.address(), grpc::InsecureChannelCredentials());
         grpc::Status st = call(plain, report("pi-1", 1), k_token_pi1);
         CHECK_FALSE(st.ok());
         CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
         CHECK(c.server->refusals().empty());
       }},
      {"a replayed report after a controller restart", "ALREADY_EXISTS, and nothing written",
       [](Controller& c, Controller&) {
         c.start();
         auto tls_channel = [&] { return rpc::controller_channel(c.address(), c.ca.certificate().pem).value(); };
         REQUIRE(call(tls_channel(), report("pi-1", 1), k_token_pi1).ok());
         REQUIRE(call(tls_channel(), report("pi-1", 2), k_token_pi1).ok());
         c.restart();  // a new process: nothing in memory, the same state database
         for (std::uint64_t seq : {1u, 2u}) {
           grpc::Status st = call(tls_channel(), report("pi-1", seq), k_token_pi1);
           INFO("sequence " << seq << ": " << st.error_message());
           CHECK(st.error_code() == grpc::StatusCode::ALREADY_EXISTS);
         }
         CHECK(c.stored("pi-1") == 2);
         REQUIRE(c.server->refusals().size() == 2);
         CHECK_THAT(c.server->refusals()[0], Catch::Contains("replay of sequence 1"));
         // The next report still goes in.
         CHECK(call(tls_channel(), report("pi-1", 3), k_token_pi1).ok());
         CHECK(c.stored("pi-1") == 3);
       }},
      {"a token of another board", "UNAUTHENTICATED, logged; the agent stops with its reports queued",
       [](Controller& c, Controller&) {
         c.start();
         auto channel = rpc::controller_channel(c.address(), c.ca.certificate().pem).value();
         // pi-1's report with pi-2's (valid) token, and pi-2's name with pi-1's token.
         CHECK(call(channel, report("pi-1", 1), k_token_pi2).error_code() == grpc::StatusCode::UNAUTHENTICATED);
         CHECK(call(channel, report("pi-2", 1), k_token_pi1).error_code() == grpc::StatusCode::UNAUTHENTICATED);
         Board board(1);
         agent::RealDisk disk;
         agent::AgentConfig cfg{"pi-1", c.address(), k_token_pi2, c.ca.certificate().pem};
         auto r = agent::send_outbox(board.paths, disk, cfg, quick());
         REQUIRE_FALSE(r);
         CHECK(r.error().code == Errc::invalid_input);
         CHECK(board.queued() == 1);
         REQUIRE(c.server->refusals().size() == 3);
         CHECK_THAT(c.server->refusals()[0], Catch::Contains("board 'pi-1'") && Catch::Contains("wrong or missing token"));
         CHECK(c.stored("pi-2") == 0);
       }},
      {"a board whose agent has no CA certificate", "nothing is sent (no plaintext fallback)",
       [](Controller& c, Controller&) {
         c.start();
         Board board(1);
         agent::RealDisk disk;
         agent::AgentConfig cfg{"pi-1", c.address(), k_token_pi1, ""};
         auto r = agent::send_outbox(board.paths, disk, cfg, quick());
         REQUIRE_FALSE(r);
         CHECK(r.error().code == Errc::invalid_input);
         CHECK(c.server->refusals().empty());
       }},
  };
  for (const auto& row : rows) {
    DYNAMIC_SECTION(row.wrong << ": " << row.expected) {
      Controller c;
      Controller other;  // a second controller: another CA
      REQUIRE(c.ca.certificate().fingerprint != other.ca.certificate().fingerprint);
      row.run(c, other);
      CHECK(c.stored("pi-1") <= 3);  // bounded: only the replay row accepts anything
      if (std::string(row.wrong).find("replay") == std::string::npos) CHECK(c.stored("pi-1") == 0);
    }
  }
}

TEST_CASE("an agent refuses a plaintext controller: no fallback") {
  // A server without TLS where the controller should be (an old fleetctl, or someone else).
  fleet::v1::ReportService::Service plain_service;
  grpc::ServerBuilder builder;
  int port = 0;
  builder.AddListeningPort("127.0.0.1:0", grpc::InsecureServerCredentials(), &port);
  builder.RegisterService(&plain_service);
  auto plain = builder.BuildAndStart();
  REQUIRE(plain);
  test::TempDir ca_dir;
  auto ca = tls::Authority::open_or_create(ca_dir / "tls").value();
  Board board(1);
  agent::RealDisk disk;
  agent::AgentConfig cfg{"pi-1", "127.0.0.1:" + std::to_string(port), k_token_pi1, ca.certificate().pem};
  auto r = agent::send_outbox(board.paths, disk, cfg, quick());
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  // Refused at once as a failed handshake (gRPC 1.51 says "Ssl handshake failed"), not
  // retried for minutes as if the controller were down; never delivered.
  CHECK(r.error().code == Errc::mismatch);
  CHECK(board.queued() == 1);
  plain->Shutdown(std::chrono::system_clock::now() + std::chrono::seconds(1));
}

TEST_CASE("the status service needs TLS from the controller's CA and its token, on every method") {
  test::TempDir dir;
  auto ca = tls::Authority::open_or_create(dir / "tls").value();
  test::TempDir other_dir;
  auto other = tls::Authority::open_or_create(other_dir / "tls").value();
  const std::string token = k_token_pi1;
  auto server = controller::StatusServer::start({"127.0.0.1:0", ca.issue_server().value(), token}, dir / "fleet.db");
  REQUIRE(server);
  const std::string address = "127.0.0.1:" + std::to_string((*server)->port());
  auto list = [&](const std::shared_ptr<grpc::Channel>& channel, const std::string& with) {
    auto stub = fleet::v1::StatusService::NewStub(channel);
    grpc::ClientContext ctx;
    if (!with.empty()) ctx.AddMetadata("authorization", "Bearer " + with);
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    fleet::v1::ListBoardsResponse resp;
    return stub->ListBoards(&ctx, {}, &resp);
  };
  auto good = rpc::controller_channel(address, ca.certificate().pem).value();
  CHECK(list(good, token).ok());
  CHECK(list(good, "").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(list(good, k_token_pi2).error_code() == grpc::StatusCode::UNAUTHENTICATED);
  CHECK(list(good, token.substr(0, 31) + "0").error_code() == grpc::StatusCode::UNAUTHENTICATED);
  {
    // A streaming method is guarded the same way, before its handler runs.
    auto stub = fleet::v1::StatusService::NewStub(good);
    grpc::ClientContext ctx;
    ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(3));
    auto reader = stub->Watch(&ctx, {});
    fleet::v1::RolloutEvent ev;
    CHECK_FALSE(reader->Read(&ev));
    CHECK(reader->Finish().error_code() == grpc::StatusCode::UNAUTHENTICATED);
  }
  auto wrong_ca = rpc::controller_channel(address, other.certificate().pem).value();
  grpc::Status st = list(wrong_ca, token);
  CHECK(st.error_code() == grpc::StatusCode::UNAVAILABLE);
  CHECK(rpc::is_handshake_failure(st));
  auto plain = grpc::CreateChannel(address, grpc::InsecureChannelCredentials());
  CHECK(list(plain, token).error_code() == grpc::StatusCode::UNAVAILABLE);
}
