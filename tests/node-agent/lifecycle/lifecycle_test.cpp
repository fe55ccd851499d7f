#include "tests/node-agent/lifecycle/board.hpp"

using namespace fleet;
using namespace fleet::agent;
using fleet::test::k_old;

namespace {

struct Fixture {
  test::SimBoard board;
  test::TempDir bundles{"fleet-bundles"};
  RealDisk disk;
  Agent agent{Context{board.paths, disk, board, "board-1"}};

  void update(const std::filesystem::path& bundle) {
    REQUIRE(agent.install(bundle, "r1"));
    REQUIRE(agent.tryboot());
    REQUIRE(board.reboot_request == RebootMode::tryboot);
    test::settle(board, agent);
  }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "a good bundle: install, tryboot, verify, commit; the new kernel stays") {
  auto b = test::make_bundle(bundles, "b1", "6.1-new");
  REQUIRE(agent.install(b, "r1"));
  auto st = board.state();
  CHECK(st.state == State::installed);
  REQUIRE(st.target);
  const std::string slot = st.target->slot.name;
  CHECK(slot.starts_with("fleet-"));
  // config.txt is untouched until the commit; tryboot.txt is a whole copy pointing at the slot.
  CHECK(board.config() == test::k_stock_config);
  auto tryboot = fs::read_file(board.paths.boot() / "tryboot.txt").value();
  CHECK_THAT(tryboot, Catch::Contains("dtparam=watchdog=on"));
  CHECK_THAT(tryboot, Catch::Contains("os_prefix=" + slot + "/"));
  auto cmdline = fs::read_file(board.paths.boot() / slot / "cmdline.txt").value();
  CHECK(cmdline == "console=ttyAMA0 root=/dev/vda rw transparent_hugepage=madvise quiet\n");
  CHECK(std::filesystem::exists(board.paths.boot() / slot / "overlays/bcm2712d0.dtbo"));
  CHECK(std::filesystem::exists(board.paths.modules() / "6.1-new/kernel/drivers/net/dummy.ko"));

  REQUIRE(agent.tryboot());
  test::settle(board, agent);
  CHECK(board.running == "6.1-new");
  st = board.state();
  CHECK(st.state == State::idle);
  CHECK(st.committed.name == slot);
  REQUIRE(st.previous);
  CHECK(st.previous->release == k_old);
  REQUIRE(st.last);
  CHECK(st.last->phase == Phase::committed);
  CHECK_THAT(board.config(), Catch::Contains("os_prefix=" + slot + "/"));
  CHECK_FALSE(std::filesystem::exists(board.paths.boot() / "tryboot.txt"));
  CHECK(board.outbox_phases() == std::vector<std::string>{"INSTALLED", "TRYBOOT", "COMMITTED"});

  board.power_on(false);  // an ordinary reboot later: the new kernel stays
  CHECK(board.running == "6.1-new");
  REQUIRE(agent.boot_check());
  CHECK(board.state().state == State::idle);
}

TEST_CASE_METHOD(Fixture, "a kernel that fails its contract is rolled back, and the report says why") {
  update(test::make_bundle(bundles, "b1", "6.1-new", "thp-never"));
  CHECK(board.running == k_old);
  auto st = board.state();
  CHECK(st.state == State::idle);
  CHECK(st.committed.release == k_old);
  REQUIRE(st.last);
  CHECK(st.last->phase == Phase::rolled_back);
  CHECK_THAT(st.last->message, Catch::Contains("thp expected madvise, got never"));
  CHECK(board.config() == test::k_stock_config);
  CHECK(board.outbox_phases() == std::vector<std::string>{"INSTALLED", "TRYBOOT", "VERIFY_FAILED", "ROLLED_BACK"});
  CHECK_FALSE(std::filesystem::exists(board.paths.modules() / "6.1-new"));
  CHECK_FALSE(board.has_partial_files());
}

TEST_CASE_METHOD(Fixture, "a kernel that never comes up: the firmware falls back and boot-check records it") {
  update(test::make_bundle(bundles, "b1", "6.1-new", "panic"));
  CHECK(board.running == k_old);
  auto st = board.state();
  REQUIRE(st.last);
  CHECK(st.last->phase == Phase::boot_failed);
  CHECK_THAT(st.last->message, Catch::Contains("boot failed, rolled back"));
  CHECK(board.config() == test::k_stock_config);
  CHECK(board.outbox_phases().back() == "BOOT_FAILED");
}

TEST_CASE_METHOD(Fixture, "rollback returns to the previous committed kernel; a second update removes older slots") {
  update(test::make_bundle(bundles, "b1", "6.1-v1"));
  CHECK(board.running == "6.1-v1");
  auto v1 = board.state().committed.name;
  update(test::make_bundle(bundles, "b2", "6.1-v2"));
  CHECK(board.running == "6.1-v2");
  auto v2 = board.state().committed.name;
  update(test::make_bundle(bundles, "b3", "6.1-v3"));
  CHECK(board.running == "6.1-v3");
  CHECK_FALSE(std::filesystem::exists(board.paths.boot() / v1));  // two slots kept: committed and previous
  CHECK(std::filesystem::exists(board.paths.boot() / v2));

  REQUIRE(agent.rollback());
  test::settle(board, agent);
  CHECK(board.running == "6.1-v2");
  auto st = board.state();
  CHECK(st.committed.name == v2);
  REQUIRE(st.last);
  CHECK(st.last->phase == Phase::rolled_back);
  board.power_on(false);
  CHECK(board.running == "6.1-v2");
}

TEST_CASE_METHOD(Fixture, "a bad bundle is refused and nothing on the board changes") {
  auto listing = [&] {
    std::vector<std::string> files;
    for (auto& e : std::filesystem::recursive_directory_iterator(board.dir.path())) files.push_back(e.path().string());
    std::sort(files.begin(), files.end());
    return files;
  };
  auto before = listing();
  SECTION("a file does not match its sha256") {
    auto b = test::make_bundle(bundles, "b1", "6.1-new");
    bundles.write("b1/boot/kernel_2712.img", "KERNEL 6.1-evil");
    auto r = agent.install(b, "r1");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("boot/kernel_2712.img"));
  }
  SECTION("the contract is missing") {
    auto b = test::make_bundle(bundles, "b1", "6.1-new");
    std::filesystem::remove(b / "contract.json");
    auto r = agent.install(b, "r1");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("contract.json"));
  }
  SECTION("the same release from another build") {
    auto b = test::make_bundle(bundles, "b1", k_old);
    auto r = agent.install(b, "r1");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("LOCALVERSION"));
  }
  SECTION("tryboot without an installed slot") {
    auto r = agent.tryboot();
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("cannot tryboot while idle"));
  }
  CHECK(listing() == before);
}

namespace {
// A disk whose boot partition is almost full.
struct FullDisk : RealDisk {
  Result<std::uint64_t> free_bytes(const std::filesystem::path&) override { return 10; }
};
}  // namespace

TEST_CASE("no room on the boot partition: refused, nothing changed") {
  test::SimBoard board;
  test::TempDir bundles;
  FullDisk disk;
  Agent agent{Context{board.paths, disk, board, "board-1"}};
  auto r = agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("KiB free"));
  CHECK_THAT(r.error().message, Catch::Contains("nothing was changed"));
  CHECK_FALSE(std::filesystem::exists(board.paths.state_file()));
  CHECK(board.config() == test::k_stock_config);
}

TEST_CASE("a reboot loop is broken after a bounded number of boots") {
  test::SimBoard board;
  board.stuck_tryboot = true;  // the firmware keeps booting tryboot.txt
  test::TempDir bundles;
  RealDisk disk;
  Agent agent{Context{board.paths, disk, board, "board-1"}};
  REQUIRE(agent.install(test::make_bundle(bundles, "b1", "6.1-new", "thp-never"), "r1"));
  REQUIRE(agent.tryboot());
  test::settle(board, agent);
  auto st = board.state();
  CHECK(st.state == State::idle);
  REQUIRE(st.last);
  CHECK(st.last->phase == Phase::boot_failed);
  CHECK_THAT(st.last->message, Catch::Contains("reboot loop"));
  CHECK(board.boots <= 2 + k_max_boots_in_state + 1);
  board.stuck_tryboot = false;
  board.power_on(false);
  CHECK(board.running == k_old);
}

TEST_CASE("an install whose process died is concluded as interrupted by the next install, which then runs") {
  test::SimBoard board;
  test::TempDir bundles;
  auto b = test::make_bundle(bundles, "b1", "6.1-new");
  {
    CrashingDisk disk(8, CrashingDisk::Mode::power_cut_after);  // the process is killed mid-copy
    Agent agent{Context{board.paths, disk, board, "board-1"}};
    CHECK_THROWS_AS(agent.install(b, "r1"), PowerCut);
  }
  CHECK(board.state().state == State::installing);
  RealDisk disk;
  Agent agent{Context{board.paths, disk, board, "board-1"}};
  REQUIRE(agent.install(b, "r1"));
  CHECK(board.state().state == State::installed);
  auto phases = board.outbox_phases();
  CHECK(phases == std::vector<std::string>{"INSTALL_FAILED", "INSTALLED"});
  REQUIRE(agent.tryboot());
  test::settle(board, agent);
  CHECK(board.state().last->phase == Phase::committed);
}
