#include <catch2/catch.hpp>
#include <algorithm>
#include <functional>
#include <map>

#include "controller/rollout/engine.hpp"

using namespace fleet;
using namespace fleet::rollout;

namespace {

// A fake clock: sleeping moves time, nothing waits.
struct FakeClock : Clock {
  std::chrono::steady_clock::time_point t{};
  std::chrono::steady_clock::time_point now() override { return t; }
  void sleep(std::chrono::milliseconds d) override { t += d; }
};

// A board whose answers a scenario scripts.
struct FakeBoard : BoardIO {
  std::string release = "6.1-old";
  std::string committed = "6.1-old";
  int boot = 1;
  bool agent_current = false;
  std::string agent_state = "idle";
  std::string last_phase;
  std::uint64_t seq = 5;
  // Faults: step name -> error; "down_for" makes connects fail a number of times.
  std::map<std::string, Error> faults;
  int unreachable_connects = 0;
  std::string outcome_phase = "COMMITTED";  // what the agent concludes after the trial boot
  bool reboots = true;                      // tryboot really reboots
  std::vector<std::string> calls;

  Result<void> maybe(const std::string& step) {
    calls.push_back(step);
    if (auto it = faults.find(step); it != faults.end()) return std::unexpected(it->second);
    return {};
  }
  Result<void> connect() override {
    calls.push_back("connect");
    if (unreachable_connects > 0) {
      --unreachable_connects;
      return fail(Errc::unreachable, "no route");
    }
    if (auto it = faults.find("connect"); it != faults.end()) return std::unexpected(it->second);
    return {};
  }
  Result<Inspection> inspect() override {
    FLEET_TRY(maybe("inspect"));
    return Inspection{release, "boot-" + std::to_string(boot), committed, seq, agent_current};
  }
  Result<void> push_agent(const std::string&) override { return maybe("push_agent"); }
  Result<void> push_bundle() override { return maybe("push_bundle"); }
  Result<void> install(const std::string&) override {
    FLEET_TRY(maybe("install"));
    agent_state = "installed";
    return {};
  }
  Result<void> tryboot() override {
    FLEET_TRY(maybe("tryboot"));
    if (!reboots) return {};
    ++boot;
    agent_state = "idle";
    last_phase = outcome_phase;
    ++seq;
    if (outcome_phase == "COMMITTED") release = committed = "6.1-new";
    return {};
  }
  Result<void> rollback() override {
    FLEET_TRY(maybe("rollback"));
    ++boot;
    last_phase = "ROLLED_BACK";
    ++seq;
    release = committed = "6.1-old";
    return {};
  }
  Result<std::string> boot_id() override {
    FLEET_TRY(maybe("boot_id"));
    return "boot-" + std::to_string(boot);
  }
  Result<AgentView> agent_view() override {
    FLEET_TRY(maybe("agent_view"));
    return AgentView{agent_state, last_phase, "why: " + last_phase, committed, seq};
  }
};

struct Run {
  store::BoardRow row;
  std::vector<std::string> saved_states;
};

Run run(FakeBoard& board, const std::string& from_state = "") {
  FakeClock clock;
  Timeouts t;
  Run r;
  r.row.board = "pi-1";
  r.row.rollout_id = "r1";
  r.row.state = from_state;
  run_board(r.row, board, clock, t, BoardTarget{"6.1-new"},
            [&](const store::BoardRow& row) { r.saved_states.push_back(row.state); });
  return r;
}

}  // namespace

TEST_CASE("a good board goes through every step, saved on entering each") {
  FakeBoard b;
  auto r = run(b);
  CHECK(r.row.outcome == "committed");
  CHECK(r.row.running_release == "6.1-new");
  CHECK(r.saved_states == std::vector<std::string>{"connect", "inspect", "push_agent", "push_bundle", "install",
                                                   "reboot", "await_boot", "await_outcome", "done"});
}

// Scenario table: a board's behaviour in, the outcome out.
TEST_CASE("board outcomes") {
  struct Scenario {
    const char* name;
    std::function<void(FakeBoard&)> setup;
    const char* outcome;
  };
  const Scenario scenarios[] = {
      {"already on the bundle: skipped", [](FakeBoard& b) { b.release = b.committed = "6.1-new"; }, "skipped"},
      {"verification failed on the board", [](FakeBoard& b) { b.outcome_phase = "ROLLED_BACK"; }, "rolled_back"},
      {"new kernel never came up", [](FakeBoard& b) { b.outcome_phase = "BOOT_FAILED"; }, "boot_failed"},
      {"unreachable throughout", [](FakeBoard& b) { b.unreachable_connects = 1000000; }, "unreachable"},
      {"unreachable for a while, then fine", [](FakeBoard& b) { b.unreachable_connects = 5; }, "committed"},
      {"auth refused is final at once", [](FakeBoard& b) { b.faults.emplace("connect", Error{Errc::auth_refused, "no"}); }, "auth_refused"},
      {"host key changed", [](FakeBoard& b) { b.faults.emplace("connect", Error{Errc::host_key, "changed"}); }, "host_key"},
      {"install refused by the agent", [](FakeBoard& b) { b.faults.emplace("install", Error{Errc::process_failed, "no room"}); }, "install_failed"},
      {"a reboot that never happens (boot_id unchanged) times out", [](FakeBoard& b) { b.reboots = false; }, "timeout"},
      {"bundle upload broken for good", [](FakeBoard& b) { b.faults.emplace("push_bundle", Error{Errc::unreachable, "reset"}); }, "unreachable"},
  };
  for (const auto& s : scenarios) {
    INFO(s.name);
    FakeBoard b;
    s.setup(b);
    auto r = run(b);
    CHECK(r.row.outcome == s.outcome);
    CHECK(r.row.state == "done");
  }
}

TEST_CASE("resume after a kill: from a step after the trial reboot, the board is only watched") {
  FakeBoard b;
  // The controller died after asking for the reboot; the board rebooted and committed.
  b.boot = 2;
  b.release = b.committed = "6.1-new";
  b.last_phase = "COMMITTED";
  b.seq = 9;
  store::BoardRow row;
  row.state = "await_boot";
  row.agent_sequence = 5;
  FakeClock clock;
  std::vector<std::string> saved;
  run_board(row, b, clock, Timeouts{}, BoardTarget{"6.1-new"}, [&](const store::BoardRow& x) { saved.push_back(x.state); });
  CHECK(row.outcome == "committed");
  CHECK(std::find(b.calls.begin(), b.calls.end(), "install") == b.calls.end());
  CHECK(std::find(b.calls.begin(), b.calls.end(), "tryboot") == b.calls.end());
}

TEST_CASE("resume after a kill between install and tryboot: the trial boot happens") {
  FakeBoard b;
  b.agent_state = "installed";
  store::BoardRow row;
  row.state = "reboot";
  row.agent_sequence = 5;
  FakeClock clock;
  run_board(row, b, clock, Timeouts{}, BoardTarget{"6.1-new"}, [](const store::BoardRow&) {});
  CHECK(row.outcome == "committed");
  CHECK(std::count(b.calls.begin(), b.calls.end(), "tryboot") == 1);
}

TEST_CASE("a rollback plan asks the agent, proves the reboot and waits for ROLLED_BACK") {
  FakeBoard b;
  b.release = b.committed = "6.1-new";
  store::BoardRow row;
  FakeClock clock;
  std::vector<std::string> saved;
  run_board(row, b, clock, Timeouts{}, BoardTarget{"6.1-new"}, [&](const store::BoardRow& x) { saved.push_back(x.state); },
            Plan::rollback);
  CHECK(row.outcome == "rolled_back");
  CHECK_FALSE(is_failure(row.outcome, Plan::rollback));
  CHECK(saved == std::vector<std::string>{"connect", "inspect", "request_rollback", "await_boot", "await_outcome", "done"});
  CHECK(std::count(b.calls.begin(), b.calls.end(), "install") == 0);
}
