// Mender's matrix for our flow: for every write the agent makes during an update (each
// state save, each file of the slot, config.txt, the outbox), once the power cut right after
// it and once that write failing. Whatever happens, every power-on must find a kernel that
// boots (SimBoard::power_on checks it), and the board must settle on a committed kernel that
// config.txt really boots, with the agent's state saying what happened.
#include <climits>

#include "tests/node-agent/lifecycle/board.hpp"

using namespace fleet;
using namespace fleet::agent;
using fleet::test::k_old;

namespace {

// The controller's part: install, then tryboot once the slot is installed; the board
// carries out the reboots.
void run_update(test::SimBoard& board, Disk& disk, const std::filesystem::path& bundle) {
  Agent agent{Context{board.paths, disk, board, "board-1"}};
  (void)agent.install(bundle, "r1");
  auto st = agent.load();
  if (st && st->state == State::installed) (void)agent.tryboot();
  test::settle(board, agent);
}

// After the fault: the board powers on again (the flag, if any, was lost with the power)
// and runs with a healthy disk; a controller would retry `tryboot` on an installed slot.
AgentState recover(test::SimBoard& board, const std::filesystem::path& bundle, bool power_cycle) {
  RealDisk disk;
  Agent agent{Context{board.paths, disk, board, "board-1"}};
  if (power_cycle) board.power_on(false);
  for (int i = 0; i < 6; ++i) {
    (void)agent.boot_check();
    test::settle(board, agent);
    auto st = agent.load();
    REQUIRE(st);
    if (st->state == State::installed) {
      REQUIRE(agent.tryboot());
      test::settle(board, agent);
      continue;
    }
    if (st->state == State::idle) break;
    board.power_on(false);
  }
  (void)bundle;
  auto st = agent.load();
  REQUIRE(st);
  return *st;
}

void check_settled(test::SimBoard& board, const AgentState& st, const std::string& new_release, bool new_is_good) {
  INFO("state " << state_name(st.state) << ", running " << board.running << ", config:\n" << board.config());
  CHECK(st.state == State::idle);
  CHECK_FALSE(board.has_partial_files());
  // config.txt boots what the agent believes is committed, and that is what runs.
  CHECK(prefix_of(board.config()) == st.committed.name);
  CHECK(board.running == st.committed.release);
  if (st.last) {
    INFO("last: " << phase_name(st.last->phase) << ": " << st.last->message);
    if (st.last->phase == Phase::committed) {
      CHECK(new_is_good);
      CHECK(board.running == new_release);
    } else {
      CHECK(board.running == k_old);
    }
  } else {
    CHECK(board.running == k_old);  // nothing was recorded: nothing may have changed
  }
  // And it stays so across an ordinary reboot.
  std::string before = board.running;
  board.power_on(false);
  CHECK(board.running == before);
}

int count_writes(const std::string& faults) {
  test::SimBoard board;
  test::TempDir bundles;
  CrashingDisk counter(INT_MAX, CrashingDisk::Mode::power_cut_after);
  run_update(board, counter, test::make_bundle(bundles, "b1", "6.1-new", faults));
  return counter.writes();
}

}  // namespace

TEST_CASE("power cut after every write of an update") {
  for (std::string faults : {"", "thp-never", "panic"}) {
    const int writes = count_writes(faults);
    INFO("kernel faults '" << faults << "', " << writes << " writes in all");
    REQUIRE(writes > 10);
    for (int n = 1; n <= writes; ++n) {
      INFO("power cut after write " << n);
      test::SimBoard board;
      test::TempDir bundles;
      auto bundle = test::make_bundle(bundles, "b1", "6.1-new", faults);
      CrashingDisk disk(n, CrashingDisk::Mode::power_cut_after);
      bool cut = false;
      try {
        run_update(board, disk, bundle);
      } catch (const PowerCut&) {
        cut = true;
      }
      REQUIRE(cut);
      auto st = recover(board, bundle, /*power_cycle=*/true);
      check_settled(board, st, "6.1-new", faults.empty());
    }
  }
}

TEST_CASE("an I/O error at every write of an update") {
  for (std::string faults : {"", "thp-never"}) {
    const int writes = count_writes(faults);
    for (int n = 1; n <= writes; ++n) {
      INFO("kernel faults '" << faults << "', I/O error at write " << n << " of " << writes);
      test::SimBoard board;
      test::TempDir bundles;
      auto bundle = test::make_bundle(bundles, "b1", "6.1-new", faults);
      CrashingDisk disk(n, CrashingDisk::Mode::io_error_at);
      run_update(board, disk, bundle);
      auto st = recover(board, bundle, /*power_cycle=*/false);
      check_settled(board, st, "6.1-new", faults.empty());
    }
  }
}
