// The rollout engine on simulated boards and a simulated clock: scenario tables of board
// behaviour in, the chain of saved steps and the outcome out, in milliseconds. The store is
// a real SQLite file.
#include <sqlite3.h>

#include <algorithm>
#include <catch2/catch.hpp>
#include <functional>
#include <atomic>
#include <map>
#include <thread>

#include "controller/rollout/engine.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::rollout;
using namespace std::chrono_literals;

namespace {

const std::string k_new = "6.1-new";

// A board in simulated time: a reboot takes `reboot_time`, the agent's verification after it
// `check_time`; every call charges its cost to the executor's clock.
struct FakeBoard {
  SimExecutor* exec = nullptr;
  std::string release = "6.1-old";
  std::string committed = "6.1-old";
  int boot = 1;
  bool agent_current = false;
  AgentState agent_state = AgentState::idle;
  AgentPhase last_phase = AgentPhase::none;
  std::uint64_t seq = 5;
  AgentPhase verdict = AgentPhase::committed;  // what the agent concludes after the trial boot
  std::string verdict_release = k_new;
  bool reboots = true;                         // tryboot really reboots
  bool stuck_installed = false;                // the agent stays installed whatever happens
  int unreachable_connects = 0;                // connects that fail first
  std::map<std::string, Error> faults;         // call -> error
  std::chrono::milliseconds reboot_time = 8000ms, check_time = 10000ms;
  std::optional<Executor::Clock::time_point> up_at, verdict_at;
  // What happened, in order, with the simulated time each call started.
  std::vector<std::pair<std::string, Executor::Clock::time_point>> calls;

  Executor::Clock::time_point now() const { return exec->now(); }
  Result<void> call(const std::string& what, std::chrono::milliseconds cost) {
    calls.emplace_back(what, now());
    exec->charge(cost);
    if (auto it = faults.find(what); it != faults.end()) return std::unexpected(it->second);
    return {};
  }
  bool down() const { return up_at && now() < *up_at; }
  void settle() {
    if (verdict_at && now() >= *verdict_at) {
      verdict_at.reset();
      agent_state = AgentState::idle;
      last_phase = verdict;
      ++seq;
      if (verdict == AgentPhase::committed) release = committed = verdict_release;
    }
  }
  int count(const std::string& what) const {
    return static_cast<int>(std::count_if(calls.begin(), calls.end(), [&](const auto& c) { return c.first == what; }));
  }
  std::optional<Executor::Clock::time_point> last(const std::string& what) const {
    std::optional<Executor::Clock::time_point> t;
    for (const auto& c : calls)
      if (c.first == what) t = c.second;
    return t;
  }
  std::optional<Executor::Clock::time_point> first(const std::string& what) const {
    for (const auto& c : calls)
      if (c.first == what) return c.second;
    return std::nullopt;
  }
};

// One BoardIO object per slot or poll (the runner makes them); the board itself persists.
struct Handle : BoardIO {
  FakeBoard& b;
  explicit Handle(FakeBoard& board) : b(board) {}
  Result<void> connect() override {
    FLEET_TRY(b.call("connect", 100ms));
    if (b.down() || b.unreachable_connects > 0) {
      if (b.unreachable_connects > 0) --b.unreachable_connects;
      return fail(Errc::unreachable, "no route to host");
    }
    return {};
  }
  Result<Inspection> inspect() override {
    FLEET_TRY(b.call("inspect", 200ms));
    return Inspection{b.release, "boot-" + std::to_string(b.boot), b.committed, b.seq, b.agent_current};
  }
  Result<void> push_agent(const std::string&) override { return b.call("push_agent", 500ms); }
  Result<void> push_bundle() override { return b.call("push_bundle", 2000ms); }
  Result<void> install(const std::string&) override {
    FLEET_TRY(b.call("install", 1000ms));
    b.agent_state = AgentState::installed;
    ++b.seq;
    return {};
  }
  Result<void> tryboot() override {
    FLEET_TRY(b.call("tryboot", 100ms));
    if (!b.reboots) return {};
    ++b.boot;
    b.up_at = b.now() + b.reboot_time;
    b.verdict_at = *b.up_at + b.check_time;
    b.agent_state = AgentState::busy;
    return {};
  }
  Result<void> rollback() override {
    FLEET_TRY(b.call("rollback", 100ms));
    ++b.boot;
    b.up_at = b.now() + b.reboot_time;
    b.verdict_at = *b.up_at;
    b.verdict = AgentPhase::rolled_back;
    b.release = b.committed = "6.1-old";
    b.agent_state = AgentState::busy;
    return {};
  }
  Result<std::string> boot_id() override {
    FLEET_TRY(b.call("boot_id", 100ms));
    if (b.down()) return fail(Errc::unreachable, "no route to host");
    return "boot-" + std::to_string(b.boot);
  }
  Result<AgentView> agent_view() override {
    FLEET_TRY(b.call("agent_view", 200ms));
    if (b.down()) return fail(Errc::unreachable, "no route to host");
    b.settle();
    if (b.stuck_installed) return AgentView{AgentState::installed, AgentPhase::none, "", b.committed, b.seq};
    return AgentView{b.agent_state, b.last_phase, "why: verdict", b.committed, b.seq};
  }
};

struct Rack {
  test::TempDir dir{"fleet-engine"};
  std::unique_ptr<store::Store> store = std::move(*store::Store::open(dir / "fleet.db"));
  SimExecutor exec;
  std::map<std::string, FakeBoard> fakes;
  std::vector<RunnerBoard> boards;
  std::map<std::string, std::vector<std::string>> saved;  // board -> steps saved, in order
  int made = 0;                                            // BoardIO objects made
  std::function<void(const store::BoardRow&)> on_save;

  // n boards, in waves of the given sizes.
  Rack(std::vector<int> waves) {
    int k = 0;
    for (std::size_t w = 0; w < waves.size(); ++w) {
      for (int i = 0; i < waves[w]; ++i) {
        std::string name = "pi-" + std::to_string(++k);
        store::BoardRow row;
        row.rollout_id = "r1";
        row.board = name;
        row.wave = static_cast<int>(w);
        row.token = "t";
        boards.push_back({row, "", 1});
        fakes[name].exec = &exec;
      }
    }
  }
  FakeBoard& fake(int i) { return fakes["pi-" + std::to_string(i)]; }
  store::BoardRow& row(int i) { return boards[i - 1].row; }

  RunnerResult run(RunnerOptions o = {}) {
    if (o.kernel_release.empty()) o.kernel_release = k_new;
    BoardFactory factory = [&](const store::BoardRow& r) -> Result<std::unique_ptr<BoardIO>> {
      ++made;
      return std::unique_ptr<BoardIO>(std::make_unique<Handle>(fakes.at(r.board)));
    };
    RowSink sink = [&](const store::BoardRow& r) {
      saved[r.board].push_back(vocab::name(r.step));
      if (on_save) on_save(r);
    };
    RolloutRunner runner(*store, factory, exec, sink);
    return runner.run(boards, o);
  }
};

using Steps = std::vector<std::string>;
// `staged` is entered and left in the same pass of the loop when the board's wave is open:
// a step without work is then saved once, as the step it left for.
const Steps k_update_steps = {"connect", "inspect",    "push_bundle",   "push_agent", "install",
                              "reboot",  "await_boot", "await_outcome", "done"};

}  // namespace

TEST_CASE("a good board goes through every step of the table, saved on entering each") {
  Rack rack({1});
  auto r = rack.run();
  CHECK(rack.row(1).outcome == Outcome::committed);
  CHECK(rack.row(1).running_release == k_new);
  CHECK(rack.saved["pi-1"] == k_update_steps);
  CHECK(r.committed == 1);
  CHECK(r.state == RolloutState::done);
  // Saved in SQLite, not only told to the sink.
  auto stored = rack.store->boards("r1");
  REQUIRE(stored);
  REQUIRE(stored->size() == 1);
  CHECK((*stored)[0].step == Step::done);
  CHECK((*stored)[0].outcome == Outcome::committed);
  // The agent's report of the verdict, by its number, is what the rollout then waits for.
  REQUIRE(r.reports_due.size() == 1);
  CHECK(r.reports_due[0].board == "pi-1");
  CHECK(r.reports_due[0].sequence == rack.fake(1).seq);
  CHECK(r.reports_due[0].sequence > 5);
}

TEST_CASE("only boards whose agent concluded owe a report of it") {
  Rack rack({3});
  rack.fake(2).release = rack.fake(2).committed = k_new;  // skipped: no verdict of its agent
  rack.fake(3).faults.emplace("install", Error{Errc::process_failed, "no room"});  // refused over SSH
  auto r = rack.run();
  REQUIRE(r.reports_due.size() == 1);
  CHECK(r.reports_due[0].board == "pi-1");
}

// Scenario table: a board's behaviour in, its outcome and last saved steps out.
TEST_CASE("board outcomes") {
  struct Scenario {
    const char* name;
    std::function<void(FakeBoard&)> setup;
    Outcome outcome;
    Steps steps;  // the saved steps (empty: not checked)
  };
  const Scenario scenarios[] = {
      {"already on the bundle: skipped", [](FakeBoard& b) { b.release = b.committed = k_new; }, Outcome::skipped,
       {"connect", "inspect", "done"}},
      {"verification failed on the board", [](FakeBoard& b) { b.verdict = AgentPhase::rolled_back; },
       Outcome::rolled_back, k_update_steps},
      {"new kernel never came up", [](FakeBoard& b) { b.verdict = AgentPhase::boot_failed; }, Outcome::boot_failed, {}},
      {"the agent committed another release", [](FakeBoard& b) { b.verdict_release = "6.1-other"; }, Outcome::failed, {}},
      {"unreachable throughout", [](FakeBoard& b) { b.unreachable_connects = 1000000; }, Outcome::unreachable,
       {"connect", "done"}},
      {"unreachable for a while, then fine", [](FakeBoard& b) { b.unreachable_connects = 5; }, Outcome::committed,
       k_update_steps},
      {"auth refused is final at once", [](FakeBoard& b) { b.faults.emplace("connect", Error{Errc::auth_refused, "no"}); },
       Outcome::auth_refused, {"connect", "done"}},
      {"host key changed", [](FakeBoard& b) { b.faults.emplace("connect", Error{Errc::host_key, "changed"}); },
       Outcome::host_key, {"connect", "done"}},
      {"inspect fails: not retried", [](FakeBoard& b) { b.faults.emplace("inspect", Error{Errc::unreachable, "reset"}); },
       Outcome::unreachable, {"connect", "inspect", "done"}},
      {"install refused by the agent",
       [](FakeBoard& b) { b.faults.emplace("install", Error{Errc::process_failed, "no room"}); }, Outcome::install_failed,
       {"connect", "inspect", "push_bundle", "push_agent", "install", "done"}},
      {"a reboot that never happens (boot_id unchanged) times out", [](FakeBoard& b) { b.reboots = false; },
       Outcome::timeout, {"connect", "inspect", "push_bundle", "push_agent", "install", "reboot", "await_boot", "done"}},
      {"bundle upload broken for good",
       [](FakeBoard& b) { b.faults.emplace("push_bundle", Error{Errc::unreachable, "reset"}); }, Outcome::unreachable,
       {"connect", "inspect", "push_bundle", "done"}},
      {"a bundle the board received damaged",
       [](FakeBoard& b) { b.faults.emplace("push_bundle", Error{Errc::mismatch, "sha256 differs"}); }, Outcome::failed,
       {"connect", "inspect", "push_bundle", "done"}},
  };
  for (const auto& s : scenarios) {
    INFO(s.name);
    Rack rack({1});
    s.setup(rack.fake(1));
    auto r = rack.run();
    CHECK(rack.row(1).outcome == s.outcome);
    CHECK(rack.row(1).step == Step::done);
    if (!s.steps.empty()) CHECK(rack.saved["pi-1"] == s.steps);
    CHECK(r.failed == (is_failure(s.outcome) ? 1 : 0));
  }
}

TEST_CASE("a step's deadline bounds its retries, in simulated time") {
  Rack rack({1});
  rack.fake(1).unreachable_connects = 1000000;
  RunnerOptions o;
  o.timeouts.connect = 30s;
  rack.run(o);
  CHECK(rack.row(1).outcome == Outcome::unreachable);
  CHECK_THAT(rack.row(1).message, Catch::Contains("gave up after 30 s"));
  const auto took = rack.exec.now() - Executor::Clock::time_point{};
  CHECK(took >= 30s);
  CHECK(took < 35s);
  // One try per poll interval (2 s), not a busy loop.
  CHECK(rack.fake(1).count("connect") <= 16);
  CHECK(rack.fake(1).count("connect") >= 10);
}

// --resume: the saved step in, the chain out.
TEST_CASE("resume from every saved step") {
  struct Scenario {
    Step saved;
    std::function<void(FakeBoard&)> board;  // what the board did before the controller died
    Outcome outcome;
    Steps steps;
    int installs, tryboots;
  };
  auto rebooted_and_committed = [](FakeBoard& b) {
    b.boot = 2;
    b.release = b.committed = k_new;
    b.last_phase = AgentPhase::committed;
    b.seq = 9;
  };
  const Scenario scenarios[] = {
      {Step::pending, [](FakeBoard&) {}, Outcome::committed, k_update_steps, 1, 1},
      {Step::push_bundle, [](FakeBoard&) {}, Outcome::committed, k_update_steps, 1, 1},
      {Step::staged, [](FakeBoard&) {}, Outcome::committed, k_update_steps, 1, 1},
      {Step::install, [](FakeBoard& b) { b.agent_state = AgentState::installed; }, Outcome::committed, k_update_steps, 1, 1},
      // Killed between install and tryboot: the trial boot happens, once.
      {Step::reboot, [](FakeBoard& b) { b.agent_state = AgentState::installed; }, Outcome::committed,
       {"await_outcome", "reboot", "await_boot", "await_outcome", "done"}, 0, 1},
      // Killed after the reboot request: only watched.
      {Step::await_boot, rebooted_and_committed, Outcome::committed, {"await_outcome", "done"}, 0, 0},
      {Step::await_outcome, rebooted_and_committed, Outcome::committed, {"done"}, 0, 0},
  };
  for (const auto& s : scenarios) {
    INFO("saved step " << vocab::name(s.saved));
    Rack rack({1});
    s.board(rack.fake(1));
    rack.row(1).step = s.saved;
    rack.row(1).agent_sequence = 5;
    rack.run();
    CHECK(rack.row(1).outcome == s.outcome);
    CHECK(rack.saved["pi-1"] == s.steps);
    CHECK(rack.fake(1).count("install") == s.installs);
    CHECK(rack.fake(1).count("tryboot") == s.tryboots);
  }
}

TEST_CASE("resume: an agent still installed after the re-entry's reboot fails instead of looping") {
  Rack rack({1});
  rack.fake(1).agent_state = AgentState::installed;
  rack.fake(1).stuck_installed = true;  // it reboots, but its agent never takes the trial
  rack.row(1).step = Step::reboot;
  rack.run();
  CHECK(rack.row(1).outcome == Outcome::failed);
  CHECK_THAT(rack.row(1).message, Catch::Contains("still installed"));
  CHECK(rack.fake(1).count("tryboot") == 1);
  CHECK(rack.saved["pi-1"] == Steps{"await_outcome", "reboot", "await_boot", "await_outcome", "done"});
}

TEST_CASE("a stopped rollout's not-started boards start again on resume") {
  Rack rack({1, 2});
  rack.row(1).step = Step::done;
  rack.row(1).outcome = Outcome::committed;
  for (int i : {2, 3}) {
    rack.row(i).step = Step::done;
    rack.row(i).outcome = Outcome::not_started;
  }
  auto r = rack.run();
  CHECK(r.committed == 3);
  CHECK(rack.fake(1).calls.empty());
  CHECK(rack.row(2).outcome == Outcome::committed);
  // Restarted: pending, then given a slot in the same pass: saved once, at connect.
  CHECK(rack.saved["pi-2"] == k_update_steps);
}

TEST_CASE("the wave gate: a failed canary stops the next wave before any of it is changed") {
  for (bool prestage : {true, false}) {
    INFO("prestage " << prestage);
    Rack rack({1, 4});
    rack.fake(1).verdict = AgentPhase::rolled_back;
    store::RolloutRow ro;
    ro.id = "r1";
    RunnerOptions o;
    o.prestage = prestage;
    RolloutRunner runner(*rack.store,
                         [&](const store::BoardRow& r) -> Result<std::unique_ptr<BoardIO>> {
                           return std::unique_ptr<BoardIO>(std::make_unique<Handle>(rack.fakes.at(r.board)));
                         },
                         rack.exec, [](const store::BoardRow&) {});
    o.kernel_release = k_new;
    auto r = runner.run(rack.boards, o, &ro);
    CHECK(r.state == RolloutState::stopped);
    CHECK(ro.state == RolloutState::stopped);
    CHECK_THAT(ro.message, Catch::Contains("1 of 1 boards failed in wave 1"));
    CHECK(r.not_started == 4);
    for (int i = 2; i <= 5; ++i) {
      CHECK(rack.row(i).outcome == Outcome::not_started);
      // Nothing changed on them: no agent, no install.
      CHECK(rack.fake(i).count("push_agent") == 0);
      CHECK(rack.fake(i).count("install") == 0);
      // Pre-staged or not: their bundle was uploaded ahead only when asked.
      CHECK(rack.fake(i).count("push_bundle") == (prestage ? 1 : 0));
    }
    auto saved = rack.store->rollout("r1");
    REQUIRE(saved);
    REQUIRE(*saved);
    CHECK((*saved)->state == RolloutState::stopped);
  }
}

TEST_CASE("max-fail lets a wave's failures through up to the limit") {
  Rack rack({1, 4, 4});
  rack.fake(3).verdict = AgentPhase::boot_failed;
  RunnerOptions o;
  o.max_fail = MaxFail{true, 25};  // one of four may fail
  auto r = rack.run(o);
  CHECK(r.state == RolloutState::done);
  CHECK(r.committed == 8);
  CHECK(r.failed == 1);
}

TEST_CASE("slots are for work: rebooting boards hold none, and the next wave is pre-staged during the trial") {
  Rack rack({1, 8});
  RunnerOptions o;
  o.forks = 2;
  o.watchers = 3;
  auto r = rack.run(o);
  CHECK(r.committed == 9);
  CHECK(r.max_in_work == 2);
  CHECK(r.max_watching <= 3);
  CHECK(r.max_watching >= 1);
  // Pre-staged: wave 2's uploads ran while the canary was on trial, its installs after the
  // canary's verdict.
  const auto canary_verdict = *rack.fake(1).last("agent_view");
  for (int i = 2; i <= 9; ++i) {
    INFO("pi-" << i);
    REQUIRE(rack.fake(i).first("install"));
    CHECK(*rack.fake(i).first("install") > canary_verdict);
    CHECK(*rack.fake(i).first("push_bundle") < canary_verdict);
  }
  // With forks 2, more than 2 boards were down at once: the reboots overlap.
  int most_down = 0;
  for (int i = 2; i <= 9; ++i) {
    auto start = *rack.fake(i).first("tryboot");
    int down = 0;
    for (int j = 2; j <= 9; ++j) {
      auto s = *rack.fake(j).first("tryboot");
      if (s <= start && start < s + rack.fake(j).reboot_time + rack.fake(j).check_time) ++down;
    }
    most_down = std::max(most_down, down);
  }
  CHECK(most_down > 2);
}

TEST_CASE("the slot model against Ansible's (a fork per board until its verdict): same outcomes, less time") {
  auto time_of = [](SlotPolicy p) {
    Rack rack({1, 31});
    RunnerOptions o;
    o.forks = 5;
    o.slots = p;
    auto r = rack.run(o);
    CHECK(r.committed == 32);
    return rack.exec.now() - Executor::Clock::time_point{};
  };
  auto held = time_of(SlotPolicy::held);
  auto work = time_of(SlotPolicy::work);
  INFO("held " << std::chrono::duration_cast<std::chrono::seconds>(held).count() << " s, work "
               << std::chrono::duration_cast<std::chrono::seconds>(work).count() << " s");
  CHECK(work * 2 < held);
}

TEST_CASE("groups: never more of a group down at once than fleet_group_max_down") {
  for (int max_down : {1, 2}) {
    INFO("max_down " << max_down);
    Rack rack({6});
    for (int i = 1; i <= 4; ++i) {
      rack.boards[i - 1].group = "rpc-a";
      rack.boards[i - 1].group_max_down = max_down;
    }
    RunnerOptions o;
    o.forks = 6;
    // Down from the agent push (the change starts) to the verdict the runner saw.
    std::map<std::string, std::pair<Executor::Clock::time_point, Executor::Clock::time_point>> windows;
    rack.on_save = [&](const store::BoardRow& r) {
      if (r.step == Step::push_agent) windows[r.board].first = rack.exec.now();
      if (r.step == Step::done) windows[r.board].second = rack.exec.now();
    };
    auto r = rack.run(o);
    CHECK(r.committed == 6);
    int most = 0;
    for (int i = 1; i <= 4; ++i) {
      auto t = windows["pi-" + std::to_string(i)].first;
      int down = 0;
      for (int j = 1; j <= 4; ++j) {
        auto [s, e] = windows["pi-" + std::to_string(j)];
        if (s <= t && t < e) ++down;
      }
      most = std::max(most, down);
    }
    CHECK(most == max_down);
    // The boards outside the group were not held back: both changed alongside pi-1.
    CHECK(windows["pi-5"].first <= windows["pi-1"].first);
    CHECK(windows["pi-5"].first < windows["pi-" + std::to_string(max_down + 1)].first);
  }
}

TEST_CASE("group_order: the batches --dry-run shows") {
  std::vector<RunnerBoard> boards;
  auto add = [&](const char* name, int wave, const char* group, int max_down) {
    store::BoardRow r;
    r.board = name;
    r.wave = wave;
    boards.push_back({r, group, max_down});
  };
  add("pi-1", 0, "", 1);
  add("pi-2", 1, "a", 1);
  add("pi-3", 1, "a", 1);
  add("pi-4", 1, "", 1);
  add("pi-5", 1, "b", 2);
  add("pi-6", 1, "b", 2);
  add("pi-7", 1, "b", 2);
  auto order = group_order(boards);
  REQUIRE(order.size() == 2);
  CHECK(order[0].batches == std::vector<std::vector<std::string>>{{"pi-1"}});
  CHECK(order[1].batches == std::vector<std::vector<std::string>>{{"pi-2", "pi-4", "pi-5", "pi-6"}, {"pi-3", "pi-7"}});
}

TEST_CASE("a failed save stops the boards it concerns, before their work") {
  Rack rack({1, 3});
  // The state file loses its table under the controller (as a full disk or an outside hand
  // would make every write fail) once the canary's reboot command went out: the canary is
  // still watched to its verdict, the next wave's boards never start.
  sqlite3* db = nullptr;
  REQUIRE(sqlite3_open((rack.dir / "fleet.db").c_str(), &db) == SQLITE_OK);
  bool broken = false;
  rack.on_save = [&](const store::BoardRow& r) {
    if (!broken && r.board == "pi-1" && r.step == Step::await_boot) {
      broken = true;
      REQUIRE(sqlite3_exec(db, "DROP TABLE boards", nullptr, nullptr, nullptr) == SQLITE_OK);
    }
  };
  RunnerOptions o;
  o.prestage = false;
  auto r = rack.run(o);
  sqlite3_close(db);
  CHECK(rack.row(1).outcome == Outcome::committed);
  CHECK_THAT(r.message, Catch::Contains("could not save"));
  for (int i = 2; i <= 4; ++i) {
    INFO("pi-" << i);
    CHECK(rack.row(i).outcome == Outcome::failed);
    CHECK_THAT(rack.row(i).message, Catch::Contains("stopped before the step's work"));
    CHECK(rack.fake(i).calls.empty());
  }
}

TEST_CASE("a board the factory cannot make fails alone, with the reason") {
  Rack rack({2});
  BoardFactory factory = [&](const store::BoardRow& r) -> Result<std::unique_ptr<BoardIO>> {
    if (r.board == "pi-2") return fail(Errc::invalid_input, "board pi-2 is no longer in inventory.yml");
    return std::unique_ptr<BoardIO>(std::make_unique<Handle>(rack.fakes.at(r.board)));
  };
  RolloutRunner runner(*rack.store, factory, rack.exec, [](const store::BoardRow&) {});
  RunnerOptions o;
  o.kernel_release = k_new;
  o.max_fail = MaxFail{true, 100};
  auto r = runner.run(rack.boards, o);
  CHECK(rack.row(1).outcome == Outcome::committed);
  CHECK(rack.row(2).outcome == Outcome::failed);
  CHECK(rack.row(2).message == "board pi-2 is no longer in inventory.yml");
  CHECK(r.failed == 1);
}

TEST_CASE("a rollback plan asks the agent, proves the reboot and waits for ROLLED_BACK") {
  Rack rack({2});
  for (int i : {1, 2}) rack.fake(i).release = rack.fake(i).committed = k_new;
  RunnerOptions o;
  o.plan = Plan::rollback;
  o.max_fail = MaxFail{true, 100};
  auto r = rack.run(o);
  CHECK(r.committed == 2);  // rolled back, as asked
  CHECK(rack.row(1).outcome == Outcome::rolled_back);
  CHECK_FALSE(is_failure(Outcome::rolled_back, Plan::rollback));
  CHECK(is_failure(Outcome::committed, Plan::rollback));
  CHECK(rack.saved["pi-1"] == Steps{"connect", "inspect", "request_rollback", "await_boot", "await_outcome", "done"});
  CHECK(rack.fake(1).count("install") == 0);
  CHECK(rack.fake(1).count("push_bundle") == 0);
}

TEST_CASE("is_failure: what counts against a wave's gate") {
  CHECK_FALSE(is_failure(Outcome::committed));
  CHECK_FALSE(is_failure(Outcome::skipped));
  CHECK_FALSE(is_failure(Outcome::none));
  for (auto o : {Outcome::rolled_back, Outcome::boot_failed, Outcome::install_failed, Outcome::unreachable,
                 Outcome::auth_refused, Outcome::host_key, Outcome::timeout, Outcome::failed})
    CHECK(is_failure(o));
}

TEST_CASE("the gate closes while the next wave is still uploading: those boards stop when their upload ends") {
  Rack rack({1, 3});
  rack.fake(1).verdict = AgentPhase::boot_failed;
  // Uploads that outlast the canary's trial (about 22 s).
  RunnerOptions o;
  o.forks = 4;
  BoardFactory factory = [&](const store::BoardRow& r) -> Result<std::unique_ptr<BoardIO>> {
    struct Slow : Handle {
      using Handle::Handle;
      Result<void> push_bundle() override { return b.call("push_bundle", 60000ms); }
    };
    if (r.board == "pi-1") return std::unique_ptr<BoardIO>(std::make_unique<Handle>(rack.fakes.at(r.board)));
    return std::unique_ptr<BoardIO>(std::make_unique<Slow>(rack.fakes.at(r.board)));
  };
  RolloutRunner runner(*rack.store, factory, rack.exec, [](const store::BoardRow&) {});
  o.kernel_release = k_new;
  auto r = runner.run(rack.boards, o);
  CHECK(r.state == RolloutState::stopped);
  for (int i = 2; i <= 4; ++i) {
    INFO("pi-" << i);
    CHECK(rack.fake(i).count("push_bundle") == 1);
    CHECK(rack.fake(i).count("push_agent") == 0);
    CHECK(rack.row(i).outcome == Outcome::not_started);
  }
  // They were in flight when the gate closed: the rollout ended after their uploads.
  CHECK(rack.exec.now() - Executor::Clock::time_point{} > 60s);
}

TEST_CASE("a group member in doubt after its reboot command holds its group: the rest are not changed") {
  Rack rack({3});
  rack.boards[0].group = rack.boards[1].group = "rpc-a";
  rack.fake(1).reboots = false;  // its boot_id never changes: in doubt, maybe down
  RunnerOptions o;
  o.max_fail = MaxFail{true, 100};
  o.timeouts.boot = 60s;
  auto r = rack.run(o);
  CHECK(rack.row(1).outcome == Outcome::timeout);
  CHECK(rack.row(2).outcome == Outcome::not_started);
  CHECK_THAT(rack.row(2).message, Catch::Contains("group rpc-a"));
  CHECK(rack.fake(2).count("push_agent") == 0);
  CHECK(rack.fake(2).count("install") == 0);
  CHECK(rack.row(3).outcome == Outcome::committed);  // not in the group: not held back
  CHECK(r.failed == 1);
  CHECK(r.not_started == 1);
}

TEST_CASE("a group member whose trial ends in a verdict gives its place to the next") {
  Rack rack({2});
  rack.boards[0].group = rack.boards[1].group = "rpc-a";
  rack.fake(1).verdict = AgentPhase::rolled_back;  // the board is up again, on its old kernel
  RunnerOptions o;
  o.max_fail = MaxFail{true, 100};
  rack.run(o);
  CHECK(rack.row(1).outcome == Outcome::rolled_back);
  CHECK(rack.row(2).outcome == Outcome::committed);
}

TEST_CASE("resume a rollback whose request never reached the agent: asked once, then watched") {
  Rack rack({1});
  rack.fake(1).release = rack.fake(1).committed = k_new;
  rack.row(1).step = Step::request_rollback;
  rack.row(1).agent_sequence = 5;  // the agent's count when the controller died: nothing since
  RunnerOptions o;
  o.plan = Plan::rollback;
  o.max_fail = MaxFail{true, 100};
  rack.run(o);
  CHECK(rack.row(1).outcome == Outcome::rolled_back);
  CHECK(rack.fake(1).count("rollback") == 1);
  CHECK(rack.saved["pi-1"] == Steps{"await_outcome", "request_rollback", "await_boot", "await_outcome", "done"});
}

TEST_CASE("a resumed board's step bound starts with its first try, not while it waits for its wave") {
  Rack rack({1, 1});
  rack.row(2).step = Step::connect;     // resumed in the next wave, behind a canary of about 22 s
  rack.fake(2).unreachable_connects = 3;  // then answers, 6 s into its connect
  RunnerOptions o;
  o.prestage = false;
  o.timeouts.connect = 10s;
  auto r = rack.run(o);
  CHECK(rack.row(2).outcome == Outcome::committed);
  CHECK(r.committed == 2);
  CHECK(*rack.fake(2).first("connect") > *rack.fake(1).last("agent_view"));
}

TEST_CASE("the thread executor: the same engine with real threads and the steady clock") {
  // Boards whose every call takes a millisecond of real time; each has its own state, and the
  // engine never gives one board two jobs at once.
  struct Quick : BoardIO {
    struct State {
      std::atomic<int> jobs{0};
      int boot = 1;
      std::uint64_t seq = 1;
      bool committed = false;
      bool overlapped = false;
    };
    State& s;
    explicit Quick(State& st) : s(st) {}
    Result<void> step() {
      if (++s.jobs > 1) s.overlapped = true;
      std::this_thread::sleep_for(1ms);
      --s.jobs;
      return {};
    }
    Result<void> connect() override { return step(); }
    Result<Inspection> inspect() override {
      FLEET_TRY(step());
      return Inspection{"6.1-old", "b" + std::to_string(s.boot), "6.1-old", s.seq, true};
    }
    Result<void> push_agent(const std::string&) override { return step(); }
    Result<void> push_bundle() override { return step(); }
    Result<void> install(const std::string&) override { return step(); }
    Result<void> tryboot() override {
      FLEET_TRY(step());
      ++s.boot;
      s.committed = true;
      ++s.seq;
      return {};
    }
    Result<void> rollback() override { return step(); }
    Result<std::string> boot_id() override {
      FLEET_TRY(step());
      return "b" + std::to_string(s.boot);
    }
    Result<AgentView> agent_view() override {
      FLEET_TRY(step());
      return AgentView{AgentState::idle, s.committed ? AgentPhase::committed : AgentPhase::none, "", k_new, s.seq};
    }
  };
  Rack rack({1, 19});
  std::map<std::string, Quick::State> states;
  for (const auto& b : rack.boards) states[b.row.board];
  BoardFactory factory = [&](const store::BoardRow& r) -> Result<std::unique_ptr<BoardIO>> {
    return std::unique_ptr<BoardIO>(std::make_unique<Quick>(states.at(r.board)));
  };
  auto exec = thread_executor(3 + 4);
  RolloutRunner runner(*rack.store, factory, *exec, [](const store::BoardRow&) {});
  RunnerOptions o;
  o.kernel_release = k_new;
  o.forks = 3;
  o.watchers = 4;
  o.timeouts.poll = 5ms;
  auto r = runner.run(rack.boards, o);
  CHECK(r.committed == 20);
  CHECK(r.max_in_work == 3);
  CHECK(r.max_watching <= 4);
  for (auto& [name, st] : states) {
    INFO(name);
    CHECK_FALSE(st.overlapped);
  }
  auto stored = rack.store->boards("r1");
  REQUIRE(stored);
  for (const auto& b : *stored) CHECK(b.outcome == Outcome::committed);
}
