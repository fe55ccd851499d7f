#include <catch2/catch.hpp>

#include "controller/rollout/ssh_board.hpp"
#include "controller/status/status_service.hpp"
#include "node-agent/lifecycle/wire.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.pb.h"

using namespace fleet;

TEST_CASE("the codec writes proto field names, every field, enums by name and 64-bit integers as strings") {
  fleet::v1::PhaseReport r;
  r.set_board_id("pi-1");
  r.set_phase(fleet::v1::COMMITTED);
  r.set_sequence(12);
  r.set_mem_total_kb(8245016);
  auto text = wire::to_json(r);
  REQUIRE(text);
  CHECK_THAT(*text, Catch::Contains("\"board_id\":\"pi-1\""));
  CHECK_THAT(*text, Catch::Contains("\"phase\":\"COMMITTED\""));
  CHECK_THAT(*text, Catch::Contains("\"sequence\":\"12\""));
  CHECK_THAT(*text, Catch::Contains("\"mem_total_kb\":\"8245016\""));
  // Unset scalars are printed too: a script sees the whole schema.
  CHECK_THAT(*text, Catch::Contains("\"message\":\"\""));
  CHECK_THAT(*text, Catch::Contains("\"phase_entered_unix_ms\":\"0\""));
  // An unset message is absent, not an empty object: "no throughput" stays distinguishable.
  CHECK_THAT(*text, !Catch::Contains("\"throughput\""));
  auto back = wire::parse<fleet::v1::PhaseReport>(*text, "x");
  REQUIRE(back);
  CHECK(back->SerializeAsString() == r.SerializeAsString());
}

TEST_CASE("the codec reads numbers for 64-bit fields and skips fields it does not know") {
  auto r = wire::parse<fleet::v1::PhaseReport>(
      R"({"board_id":"pi-1","phase":"TRYBOOT","sequence":7,"from_a_newer_agent":{"x":1}})", "outbox/7.json");
  REQUIRE(r);
  CHECK(r->sequence() == 7);
  CHECK(r->phase() == fleet::v1::TRYBOOT);
}

TEST_CASE("the codec's errors name the source and the message type") {
  auto bad = wire::parse<fleet::v1::PhaseReport>(R"({"board_id":"pi-1","sequence":"seven"})", "outbox/000000000007.json");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().code == Errc::parse);
  CHECK_THAT(bad.error().message, Catch::StartsWith("outbox/000000000007.json: not a fleet.v1.PhaseReport in JSON"));
  CHECK_FALSE(wire::parse<fleet::v1::AgentStatus>("not json", "board pi-2: fleet-agent status --json"));
  CHECK_FALSE(wire::parse<fleet::v1::AgentStatus>("[1,2]", "x"));
}

TEST_CASE("text that is not UTF-8 (a board's file as read) leaves the codec as JSON a controller can read") {
  // A proto3 string with such bytes would make the controller's gRPC parse refuse the whole
  // report; written through the codec first (the outbox), the bytes are dropped and the rest arrives.
  fleet::v1::Check c;
  c.set_property("thp");
  c.set_detail(std::string("read \xff\xfe from sysfs"));
  auto text = wire::to_json(c);
  REQUIRE(text);
  CHECK_THAT(*text, Catch::Contains("\"detail\":\"read  from sysfs\""));
  auto back = wire::parse<fleet::v1::Check>(*text, "x");
  REQUIRE(back);
  CHECK(back->property() == "thp");
}

TEST_CASE("the agent's status travels whole: what the agent prints is what the controller acts on") {
  agent::AgentState s;
  s.state = agent::State::installed;
  s.committed = {"", "6.1.0-stock"};
  s.target = agent::Target{{"fleet-0123456789ab", "6.12.49-v8-16k-fleet"}, std::string(64, 'a'), "r-7",
                           agent::BenchSpec{"15m", "", 2, 1.5}};
  s.last = agent::Outcome{agent::Phase::rolled_back, "6.1.0-stock", "thp expected madvise, got never", 1700000000000};
  s.sequence = 9;
  auto m = agent::status_message(s);
  m.add_trusted_keys("e78c5f502036d9ce");
  auto text = wire::to_json(m, wire::Layout::indented);
  REQUIRE(text);
  CHECK_THAT(*text, Catch::Contains("\"state\": \"AGENT_INSTALLED\""));
  auto read = wire::parse<fleet::v1::AgentStatus>(*text, "board pi-1: fleet-agent status --json");
  REQUIRE(read);
  CHECK(read->target().slot().release() == "6.12.49-v8-16k-fleet");
  CHECK(read->target().bench().min_tokens_per_s() == 1.5);
  CHECK(read->trusted_keys(0) == "e78c5f502036d9ce");

  auto v = rollout::agent_view_of(*read);
  CHECK(v.state == rollout::AgentState::installed);
  CHECK(v.sequence == 9);
  CHECK(v.committed_release == "6.1.0-stock");
  CHECK(v.last_phase == rollout::AgentPhase::rolled_back);
  CHECK(v.last_message == "thp expected madvise, got never");

  for (auto [state, want] : {std::pair{agent::State::idle, rollout::AgentState::idle},
                             std::pair{agent::State::verifying, rollout::AgentState::busy},
                             std::pair{agent::State::rolling_back, rollout::AgentState::busy}}) {
    s.state = state;
    CHECK(rollout::agent_view_of(agent::status_message(s)).state == want);
  }
  s.last.reset();
  CHECK(rollout::agent_view_of(agent::status_message(s)).last_phase == rollout::AgentPhase::none);
}

TEST_CASE("an agent older than AgentStatus is still read: inspect's fields, and its idle and installed states for rollback") {
  // What fleet-agent printed before: its state.json plus trusted_keys, lowercase states.
  const char* old = R"({"state":"idle","committed":{"name":"","release":"6.1.0-stock"},"boots_in_state":0,
      "last":{"phase":"COMMITTED","release":"6.1.0-stock","message":"","at_ms":1700000000000},"sequence":4,
      "trusted_keys":["e78c5f502036d9ce"]})";
  auto st = wire::parse<fleet::v1::AgentStatus>(old, "board pi-3: fleet-agent status --json");
  REQUIRE(st);
  CHECK(st->state() == fleet::v1::AGENT_STATE_UNSPECIFIED);
  CHECK(st->committed().release() == "6.1.0-stock");
  CHECK(st->sequence() == 4);
  CHECK(st->trusted_keys_size() == 1);
  CHECK(rollout::agent_view_of(*st).state == rollout::AgentState::busy);

  // Rollback does not replace the agent: what it waits for, idle after the reboot, is read
  // from the old names too; a working state stays unknown.
  auto legacy = rollout::read_agent_status(old, "board pi-3: fleet-agent status --json");
  REQUIRE(legacy);
  CHECK(rollout::agent_view_of(*legacy).state == rollout::AgentState::idle);
  CHECK(rollout::agent_view_of(*legacy).last_phase == rollout::AgentPhase::committed);
  auto installed = rollout::read_agent_status(R"({"state":"installed","sequence":5})", "x");
  REQUIRE(installed);
  CHECK(rollout::agent_view_of(*installed).state == rollout::AgentState::installed);
  auto working = rollout::read_agent_status(R"({"state":"verifying","sequence":5})", "x");
  REQUIRE(working);
  CHECK(rollout::agent_view_of(*working).state == rollout::AgentState::busy);
  CHECK_FALSE(rollout::read_agent_status("{", "board pi-3: fleet-agent status --json"));
}

TEST_CASE("a stored verification: the Verification message, or the bare list older databases hold") {
  store::ReportRow r;
  r.board = "pi-1";
  r.sequence = 3;
  r.checks_json = R"([{"property":"thp","expected":"madvise","actual":"never","pass":false}])";
  auto legacy = controller::stored_verification(r);
  REQUIRE(legacy);
  REQUIRE(legacy->checks_size() == 1);
  CHECK(legacy->checks(0).actual() == "never");

  agent::Report report;
  report.checks.push_back({"thp", "madvise", "madvise", true, "read", ""});
  report.memory = agent::Meminfo{1000, 900};
  r.checks_json = wire::to_json(agent::verification_message(report)).value();
  auto now = controller::stored_verification(r);
  REQUIRE(now);
  CHECK(now->ok());
  CHECK(now->memory().mem_available_kb() == 900);

  r.checks_json = R"({"checks":"thp"})";
  auto bad = controller::stored_verification(r);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message, Catch::StartsWith("report 3 of board pi-1"));
}
