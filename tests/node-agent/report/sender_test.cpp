#include <catch2/catch.hpp>
#include <mutex>

#include "controller/reports/report_server.hpp"
#include "controller/tls/authority.hpp"
#include "node-agent/report/sender.hpp"
#include "tests/node-agent/lifecycle/board.hpp"

using namespace fleet;
using namespace fleet::agent;

namespace {

struct Received {
  std::mutex mu;
  std::vector<fleet::v1::PhaseReport> reports;
  void add(const fleet::v1::PhaseReport& r) {
    std::lock_guard lock(mu);
    reports.push_back(r);
  }
};

// The controller's side: its CA, its state database, a report server with board-1's token
// for rollout-7.
struct Controller {
  test::TempDir dir;
  tls::Authority ca = tls::Authority::open_or_create(dir / "tls").value();
  std::unique_ptr<store::Store> store = store::Store::open(dir / "fleet.db").value();
  std::unique_ptr<controller::ReportServer> server;
  std::string address() const { return "127.0.0.1:" + std::to_string(server->port()); }
  AgentConfig config(const std::string& token) const {
    return {"board-1", address(), token, ca.certificate().pem};
  }
};

void start_server(Controller& c, Received& received) {
  controller::TokenBook tokens;
  tokens.add("board-1", "rollout-7", "s3cret");
  auto s = controller::ReportServer::start({"127.0.0.1:0", c.ca.issue_server().value()}, tokens, *c.store,
                                           [&](const fleet::v1::PhaseReport& r) { received.add(r); });
  REQUIRE(s);
  c.server = std::move(*s);
}

SendOptions quick() {
  SendOptions o;
  o.rpc_timeout = std::chrono::milliseconds(2000);
  o.give_up_after = std::chrono::milliseconds(1500);
  o.first_backoff = std::chrono::milliseconds(100);
  o.max_backoff = std::chrono::milliseconds(400);
  return o;
}

// A whole good update on the simulated board, leaving INSTALLED, TRYBOOT and COMMITTED in
// the outbox.
void update_board(test::SimBoard& board, const test::TempDir& bundles) {
  RealDisk disk;
  Agent agent{Context{board.paths, disk, board, "board-1"}};
  REQUIRE(agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "rollout-7"));
  REQUIRE(agent.tryboot());
  test::settle(board, agent);
  REQUIRE(board.outbox_phases().size() == 3);
}

}  // namespace

TEST_CASE("the outbox reaches the controller in order, with the checks, and is emptied") {
  Received received;
  Controller controller;
  start_server(controller, received);
  test::SimBoard board;
  test::TempDir bundles;
  update_board(board, bundles);
  RealDisk disk;
  AgentConfig cfg = controller.config("s3cret");
  auto r = send_outbox(board.paths, disk, cfg, quick());
  REQUIRE(r);
  CHECK(r->sent == 3);
  CHECK(r->left == 0);
  REQUIRE(received.reports.size() == 3);
  CHECK(received.reports[0].phase() == fleet::v1::INSTALLED);
  CHECK(received.reports[1].phase() == fleet::v1::TRYBOOT);
  const auto& committed = received.reports[2];
  CHECK(committed.phase() == fleet::v1::COMMITTED);
  CHECK(committed.rollout_id() == "rollout-7");
  CHECK(committed.running_release() == "6.1-new");
  CHECK(committed.checks_size() == 7);
  CHECK(committed.mem_total_kb() == 1000);
  CHECK(received.reports[0].sequence() < received.reports[2].sequence());
  CHECK(board.outbox_phases().empty());
  CHECK(fs::read_file(board.paths.outbox() / k_sent_marker).value() == std::to_string(committed.sequence()));

  // The controller keeps them in its state database.
  auto stored = controller.store->reports("board-1");
  REQUIRE(stored);
  CHECK(stored->size() == 3);

  // Sending again sends nothing; a replayed report is refused as one (ALREADY_EXISTS),
  // which the agent takes as delivered, and dropped.
  auto again = send_outbox(board.paths, disk, cfg, quick());
  REQUIRE(again);
  CHECK(again->sent == 0);
  board.dir.write("var/lib/fleet-agent/outbox/000000000001.json",
                  R"({"board_id":"board-1","rollout_id":"rollout-7","phase":"INSTALLED","sequence":1})");
  auto replay = send_outbox(board.paths, disk, cfg, quick());
  REQUIRE(replay);
  CHECK(replay->sent == 1);
  CHECK(received.reports.size() == 3);
  CHECK(board.outbox_phases().empty());
  REQUIRE_FALSE(controller.server->refusals().empty());
  CHECK_THAT(controller.server->refusals().back(), Catch::Contains("replay of sequence 1"));
}

TEST_CASE("a leftover report of another rollout is set aside, and the reports behind it still go") {
  Received received;
  Controller controller;
  start_server(controller, received);
  test::SimBoard board;
  test::TempDir bundles;
  update_board(board, bundles);
  // Older than the rest (a lower number): a report of rollout-6 whose controller had gone.
  board.dir.write("var/lib/fleet-agent/outbox/000000000000.json",
                  R"({"board_id":"board-1","rollout_id":"rollout-6","phase":"COMMITTED","sequence":1})");
  RealDisk disk;
  auto r = send_outbox(board.paths, disk, controller.config("s3cret"), quick());
  REQUIRE(r);
  CHECK(r->set_aside == 1);
  CHECK(r->sent == 3);
  CHECK(received.reports.size() == 3);
  CHECK(std::filesystem::exists(board.paths.outbox() / "000000000000.json.stale"));
  REQUIRE_FALSE(controller.server->refusals().empty());
  CHECK_THAT(controller.server->refusals().front(), Catch::Contains("another rollout"));
}

TEST_CASE("a wrong token is refused and logged, the reports stay queued") {
  Received received;
  Controller controller;
  start_server(controller, received);
  auto& server = controller.server;
  test::SimBoard board;
  test::TempDir bundles;
  update_board(board, bundles);
  RealDisk disk;
  AgentConfig cfg = controller.config("guess");
  auto r = send_outbox(board.paths, disk, cfg, quick());
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::invalid_input);
  CHECK_THAT(r.error().message, Catch::Contains("refused"));
  CHECK(received.reports.empty());
  REQUIRE(server->refusals().size() == 1);
  CHECK_THAT(server->refusals()[0], Catch::Contains("board 'board-1'"));
  CHECK_THAT(server->refusals()[0], Catch::Contains("wrong or missing token"));
  CHECK(board.outbox_phases().size() == 3);
}

TEST_CASE("an unreachable controller is retried with backoff, then the agent gives up, keeping the reports") {
  // A port with nothing behind it: bind a server, note its port, stop it.
  Controller controller;
  AgentConfig cfg;
  {
    Received unused;
    start_server(controller, unused);
    cfg = controller.config("s3cret");
    controller.server.reset();
  }
  test::SimBoard board;
  test::TempDir bundles;
  update_board(board, bundles);
  RealDisk disk;
  auto started = std::chrono::steady_clock::now();
  auto r = send_outbox(board.paths, disk, cfg, quick());
  auto took = std::chrono::steady_clock::now() - started;
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::timeout);
  CHECK_THAT(r.error().message, Catch::Contains("3 reports wait"));
  CHECK(took < std::chrono::seconds(10));
  CHECK(board.outbox_phases().size() == 3);
}

TEST_CASE("agent config and outbox files are parsed strictly") {
  CHECK(parse_agent_config(R"({"board_id":"b","controller":"h:1","token":"t"})", "a.json"));
  auto bad = parse_agent_config(R"({"board_id":"b","controller":"h:1"})", "/etc/fleet-agent/agent.json");
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::Contains("/etc/fleet-agent/agent.json: field 'token'"));
  auto r = report_from_json(R"({"board_id":"b","phase":"COMMITTED","sequence":4,"checks":[{"property":"thp","expected":"madvise","actual":"madvise","pass":true}]})", "x");
  REQUIRE(r);
  CHECK(r->phase() == fleet::v1::COMMITTED);
  CHECK(r->checks(0).property() == "thp");
  CHECK_FALSE(report_from_json(R"({"board_id":"b","phase":"PARTYING","sequence":4})", "x"));
  CHECK_FALSE(report_from_json(R"({"phase":"COMMITTED"})", "x"));
}

TEST_CASE("the throughput an agent measured goes on the wire, a report without it has none") {
  auto r = report_from_json(
      R"({"board_id":"b","phase":"COMMITTED","sequence":5,"throughput":{"shape":"3b","tokens_per_s":4.75,)"
      R"("effective_gbps":9.5,"read_gbps":11.0,"threads":4,"dot_path":"neon-dotprod","numa_nodes":8,)"
      R"("bytes_per_token":1900000000,"llama_tg_ts":4.5,"llama_tg_stddev":0.1,"model":"m.gguf","later_field":1}})",
      "x");
  REQUIRE(r);
  REQUIRE(r->has_throughput());
  CHECK(r->throughput().shape() == "3b");
  CHECK(r->throughput().tokens_per_s() == 4.75);
  CHECK(r->throughput().numa_nodes() == 8);
  CHECK(r->throughput().bytes_per_token() == 1900000000u);
  CHECK(r->throughput().llama_tg_ts() == 4.5);
  CHECK(r->throughput().model() == "m.gguf");
  CHECK_FALSE(r->throughput().has_temperature_c());  // no sensor: absent, not 0 C
  CHECK_FALSE(r->throughput().has_undervoltage());
  auto hot = report_from_json(
      R"({"board_id":"b","phase":"VERIFY_FAILED","sequence":6,"throughput":{"shape":"3b","tokens_per_s":1.5,)"
      R"("temperature_c":84.5,"undervoltage":false,"cpu_mhz":1500,"cpu_max_mhz":2400}})",
      "x");
  REQUIRE(hot);
  REQUIRE(hot->throughput().has_temperature_c());
  CHECK(hot->throughput().temperature_c() == 84.5);
  REQUIRE(hot->throughput().has_undervoltage());
  CHECK_FALSE(hot->throughput().undervoltage());
  CHECK(hot->throughput().cpu_mhz() == 1500);
  CHECK(hot->throughput().cpu_max_mhz() == 2400);
  auto none = report_from_json(R"({"board_id":"b","phase":"INSTALLED","sequence":1})", "x");
  REQUIRE(none);
  CHECK_FALSE(none->has_throughput());
  CHECK_FALSE(report_from_json(R"({"board_id":"b","phase":"COMMITTED","sequence":5,"throughput":{"threads":"four"}})", "x"));
}
