#include <nlohmann/json.hpp>

#include "common/bundle.hpp"
#include "common/signing.hpp"
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

  void update(const std::filesystem::path& bundle) { update_with(bundle, std::nullopt); }
  void update_with(const std::filesystem::path& bundle, const std::optional<BenchSpec>& bench) {
    REQUIRE(agent.install(bundle, "r1", bench));
    REQUIRE(agent.tryboot());
    REQUIRE(board.reboot_request == RebootMode::tryboot);
    test::settle(board, agent);
  }
};

}  // namespace

TEST_CASE_METHOD(Fixture, "a good bundle: install, tryboot, verify, commit, the new kernel stays") {
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

TEST_CASE_METHOD(Fixture, "rollback returns to the previous committed kernel, a second update removes older slots") {
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
  SECTION("a bootloader too old to trust with a tryboot") {
    bootloader::Info old;
    old.build_timestamp = 1713571200;  // 2024-04-20
    board.loader = old;
    auto b = test::make_bundle(bundles, "b1", "6.1-new");
    auto r = agent.install(b, "r1");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::unsupported);
    CHECK_THAT(r.error().message, Catch::Contains("2024-04-20") && Catch::Contains("2024-05-13") &&
                                      Catch::Contains("rpi-eeprom-update -a") && Catch::Contains("nothing was changed"));
  }
  SECTION("a bootloader that says it cannot tryboot") {
    bootloader::Info no_tryboot;
    no_tryboot.build_timestamp = 1741626637;  // 2025-03-10
    no_tryboot.capabilities = 0x77;
    board.loader = no_tryboot;
    auto r = agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("cannot tryboot"));
  }
  SECTION("a bootloader node that cannot be read") {
    board.bootloader_unreadable = true;
    auto r = agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("3 bytes") && Catch::Contains("nothing was changed"));
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

namespace {
nlohmann::json last_report(test::SimBoard& board, const std::string& phase) {
  std::vector<std::filesystem::path> names;
  for (const auto& e : std::filesystem::directory_iterator(board.paths.outbox())) {
    if (e.path().extension() == ".json") names.push_back(e.path());
  }
  std::sort(names.begin(), names.end());
  for (auto it = names.rbegin(); it != names.rend(); ++it) {
    auto j = nlohmann::json::parse(fs::read_file(*it).value());
    if (j["phase"] == phase) return j;
  }
  FAIL("no " << phase << " report");
  return {};
}
}  // namespace

TEST_CASE_METHOD(Fixture, "a board with a current bootloader installs, and its version travels in the report") {
  bootloader::Info current;
  current.build_timestamp = 1741626637;  // 2025-03-10
  current.version = "2bb2ae640058a2f3aa8dcbdc2da33302e509668d";
  current.capabilities = 0x7f;
  board.loader = current;
  update(test::make_bundle(bundles, "b1", "6.1-new"));
  CHECK(board.running == "6.1-new");
  auto report = last_report(board, "COMMITTED");
  bool seen = false;
  for (const auto& c : report["checks"]) {
    if (c["property"] != "bootloader") continue;
    seen = true;
    CHECK(c["actual"] == "2025-03-10 (2bb2ae64)");
    CHECK(c["warning"] == "");
  }
  CHECK(seen);
}

TEST_CASE_METHOD(Fixture, "throughput is measured after the contract passes and travels in the report") {
  BenchSpec spec;
  spec.shape = "1b";
  spec.min_tokens_per_s = 2.0;
  REQUIRE(agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1", spec));
  REQUIRE(board.state().target->bench);
  CHECK(board.state().target->bench->min_tokens_per_s == 2.0);  // saved across the reboot
  REQUIRE(agent.tryboot());
  test::settle(board, agent);
  CHECK(board.running == "6.1-new");
  REQUIRE(board.measured.size() == 2);  // the committed kernel at install, the trial kernel after its boot
  CHECK(board.measured[0].shape == "1b");
  CHECK(board.measured[1].shape == "1b");
  auto j = last_report(board, "COMMITTED");
  CHECK(j["throughput"]["tokens_per_s"] == 5.0);
  CHECK(j["throughput"]["shape"] == "1b");
  CHECK(j["throughput"]["baseline_tokens_per_s"] == 5.0);
  CHECK(j["throughput"]["baseline_release"] == k_old);
  CHECK(j["throughput"]["baseline_tokens_timed"] == 29);
  bool found = false;
  for (const auto& c : j["checks"]) {
    if (c["property"] == "tokens_per_s") {
      found = true;
      CHECK(c["expected"] == ">= 2.00");
      CHECK(c["actual"] == "5.00");
      CHECK(c["pass"] == true);
    }
  }
  CHECK(found);
}

TEST_CASE_METHOD(Fixture, "a kernel below the board class's minimum tokens/s fails its verification and goes back") {
  BenchSpec spec;
  spec.min_tokens_per_s = 2.0;
  REQUIRE(agent.install(test::make_bundle(bundles, "b1", "6.1-new", "slow"), "r1", spec));
  REQUIRE(agent.tryboot());
  test::settle(board, agent);
  CHECK(board.running == k_old);
  auto st = board.state();
  REQUIRE(st.last);
  CHECK(st.last->phase == Phase::rolled_back);
  CHECK_THAT(st.last->message, Catch::Contains("tokens_per_s expected >= 2.00, got 1.00"));
  CHECK(board.outbox_phases() == std::vector<std::string>{"INSTALLED", "TRYBOOT", "VERIFY_FAILED", "ROLLED_BACK"});
  CHECK(last_report(board, "VERIFY_FAILED")["throughput"]["tokens_per_s"] == 1.0);
}

TEST_CASE_METHOD(Fixture, "a low figure on an under-powered, hot board says so in the failed check") {
  BenchSpec spec;
  spec.min_tokens_per_s = 2.0;
  update_with(test::make_bundle(bundles, "b1", "6.1-new", "slow undervolt"), spec);
  CHECK(board.running == k_old);
  auto report = last_report(board, "VERIFY_FAILED");
  CHECK(report["throughput"]["undervoltage"] == true);
  bool found = false;
  for (const auto& c : report["checks"]) {
    if (c["property"] != "tokens_per_s") continue;
    found = true;
    CHECK(c["pass"] == false);
    CHECK_THAT(c["detail"].get<std::string>(), Catch::Contains("under-voltage"));
    CHECK_THAT(c["detail"].get<std::string>(), Catch::Contains("84.0 C"));
  }
  CHECK(found);
}

TEST_CASE_METHOD(Fixture, "a failed measurement is reported, it fails the kernel only when a minimum is required") {
  SECTION("report only") {
    REQUIRE(agent.install(test::make_bundle(bundles, "b1", "6.1-new", "bench-fails"), "r1", BenchSpec{}));
    REQUIRE(agent.tryboot());
    test::settle(board, agent);
    CHECK(board.running == "6.1-new");
    auto j = last_report(board, "COMMITTED");
    CHECK(j["throughput"].is_null());
    CHECK(j["checks"].back()["actual"] == "none");
    CHECK_THAT(j["checks"].back()["detail"].get<std::string>(), Catch::Contains("not enough memory"));
  }
  SECTION("with a minimum") {
    BenchSpec spec;
    spec.min_tokens_per_s = 0.5;
    REQUIRE(agent.install(test::make_bundle(bundles, "b1", "6.1-new", "bench-fails"), "r1", spec));
    REQUIRE(agent.tryboot());
    test::settle(board, agent);
    CHECK(board.running == k_old);
    CHECK(board.state().last->phase == Phase::rolled_back);
  }
}

TEST_CASE_METHOD(Fixture, "no benchmark is run on a kernel that failed its contract, nor without a request") {
  BenchSpec spec;
  spec.min_tokens_per_s = 2.0;
  update_with(test::make_bundle(bundles, "b1", "6.1-new", "thp-never"), spec);
  CHECK(board.measured.size() == 1);  // only the committed kernel's, at install
  update(test::make_bundle(bundles, "b2", "6.1-newer"));
  CHECK(board.running == "6.1-newer");
  CHECK(board.measured.size() == 1);
}

TEST_CASE_METHOD(Fixture, "a benchmark model that is not on the board, or an unknown shape, refuses the install") {
  test::TempDir model;
  BenchSpec spec;
  spec.model = "/models/llama.gguf";
  auto r = agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1", spec);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("the benchmark model (fleet_model)"));
  CHECK_THAT(r.error().message, Catch::Contains("llama.gguf"));
  board.dir.write("models/llama.gguf", "not gguf");
  r = agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1", spec);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("not a GGUF file"));
  spec = BenchSpec{};
  spec.shape = "70b";
  r = agent.install(test::make_bundle(bundles, "b1", "6.1-new"), "r1", spec);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("unknown benchmark shape '70b'"));
  CHECK(board.config() == test::k_stock_config);
  CHECK_FALSE(std::filesystem::exists(board.paths.boot() / "tryboot.txt"));
}

TEST_CASE("a board that trusts a key installs only bundles that key signed, and changes nothing otherwise") {
  test::SimBoard board;
  test::TempDir bundles{"fleet-bundles"};
  RealDisk disk;
  auto release = signing::generate();
  auto other = signing::generate();
  REQUIRE(release);
  REQUIRE(other);
  const auto key = signing::parse_public(release->public_pem, "release.pub");
  REQUIRE(key);
  Agent agent{Context{board.paths, disk, board, "board-1", {*key}}};
  auto b = test::make_bundle(bundles, "b1", "6.1-new");
  const auto before = board.config();

  auto refused = [&](const std::string& why) {
    INFO(why);
    auto r = agent.install(b, "r1");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("nothing was changed"));
    CHECK(board.config() == before);
    CHECK_FALSE(std::filesystem::exists(board.paths.boot() / "tryboot.txt"));
    CHECK_FALSE(board.has_partial_files());
    CHECK_FALSE(std::filesystem::exists(board.paths.state_file()));  // not even the agent's state
    return r.error().message;
  };
  CHECK_THAT(refused("unsigned"), Catch::Contains("is not signed"));
  REQUIRE(bundle::sign(b, other->private_pem, "other.pem"));
  CHECK_THAT(refused("signed by another key"), Catch::Contains("which is not trusted here"));
  CHECK(board.outbox_phases().empty());

  REQUIRE(bundle::sign(b, release->private_pem, "release.pem"));
  REQUIRE(agent.install(b, "r1"));
  CHECK(board.state().state == State::installed);
  auto outbox = board.outbox_phases();
  REQUIRE(outbox == std::vector<std::string>{"INSTALLED"});
  bool named = false;
  for (const auto& e : std::filesystem::directory_iterator(board.paths.outbox())) {
    if (e.path().extension() == ".json") named = fs::read_file(e.path()).value().find("signed by key " + release->id) != std::string::npos;
  }
  CHECK(named);
}

namespace {
// The check of `property` in a report, or null.
nlohmann::json check_of(const nlohmann::json& report, const std::string& property) {
  for (const auto& c : report["checks"])
    if (c["property"] == property) return c;
  return nullptr;
}
}  // namespace

TEST_CASE_METHOD(Fixture, "a trial kernel slower than the committed one beyond the allowed regression goes back, with both figures") {
  BenchSpec spec;
  spec.shape = "1b";
  spec.max_regression = 0.03;
  update_with(test::make_bundle(bundles, "b1", "6.1-new", "slow"), spec);
  CHECK(board.running == k_old);
  REQUIRE(board.state().last);
  CHECK(board.state().last->phase == Phase::rolled_back);
  auto report = last_report(board, "VERIFY_FAILED");
  auto gate = check_of(report, "tokens_per_s_change");
  REQUIRE_FALSE(gate.is_null());
  CHECK(gate["pass"] == false);
  CHECK(gate["expected"] == ">= -3.0%");
  CHECK(gate["actual"] == "-80.0% vs " + std::string(k_old) + " (5.00 -> 1.00 t/s)");
  CHECK_THAT(gate["detail"].get<std::string>(), Catch::Contains("noise 3.7%"));
  CHECK_THAT(board.state().last->message, Catch::Contains("tokens_per_s_change expected >= -3.0%, got -80.0% vs"));
}

TEST_CASE_METHOD(Fixture, "a slowdown within the noise of the two measurements passes, with a warning") {
  BenchSpec spec;
  spec.shape = "1b";
  spec.max_regression = 0.01;  // 2% slower: past the 1% allowed, within 1% + 3.7% of noise
  update_with(test::make_bundle(bundles, "b1", "6.1-new", "slightly-slow"), spec);
  CHECK(board.running == "6.1-new");
  auto gate = check_of(last_report(board, "COMMITTED"), "tokens_per_s_change");
  REQUIRE_FALSE(gate.is_null());
  CHECK(gate["pass"] == true);
  CHECK(gate["actual"] == "-2.0% vs " + std::string(k_old) + " (5.00 -> 4.90 t/s)");
  CHECK_THAT(gate["warning"].get<std::string>(), Catch::Contains("within the noise"));
}

TEST_CASE_METHOD(Fixture, "the committed kernel's last measurement serves as the next baseline, the same way, for a day") {
  BenchSpec spec;
  spec.shape = "1b";
  update_with(test::make_bundle(bundles, "b1", "6.1-new"), spec);
  REQUIRE(board.measured.size() == 2);
  REQUIRE(board.state().measured);
  CHECK(board.state().measured->release == "6.1-new");
  CHECK(board.state().measured->key == "probe 1b, all threads");
  // The next update compares with the figure 6.1-new was committed on: not measured again.
  update_with(test::make_bundle(bundles, "b2", "6.1-newer"), spec);
  CHECK(board.measured.size() == 3);
  REQUIRE(board.state().measured);
  CHECK(board.state().measured->release == "6.1-newer");
  CHECK(last_report(board, "COMMITTED")["throughput"]["baseline_release"] == "6.1-new");
  // Measured another way (more threads), it is measured again.
  spec.threads = 2;
  update_with(test::make_bundle(bundles, "b3", "6.1-newest"), spec);
  CHECK(board.measured.size() == 5);
  // The same request to an agent whose probe now measures another way (a new version): the
  // kept figure was not taken that way, so the committed kernel is measured again.
  board.method = "probe method 2";
  update_with(test::make_bundle(bundles, "b4", "6.1-latest"), spec);
  CHECK(board.measured.size() == 7);
  REQUIRE(board.state().measured);
  CHECK(board.state().measured->spec == "probe 1b, 2 threads; probe method 2");
}

TEST_CASE_METHOD(Fixture, "a kept measurement older than a day, or from a clock that went back, is measured again") {
  BenchSpec spec;
  spec.shape = "1b";
  board.clock = 1'780'000'000'000;  // a wall clock in 2026, in ms
  update_with(test::make_bundle(bundles, "b1", "6.1-new"), spec);
  REQUIRE(board.measured.size() == 2);
  // Within the day: reused (one measurement, the trial's).
  board.clock += 23LL * 3600 * 1000;
  update_with(test::make_bundle(bundles, "b2", "6.1-newer"), spec);
  CHECK(board.measured.size() == 3);
  // A day and a bit later: the committed kernel is measured again before the install.
  board.clock += 24LL * 3600 * 1000 + 1;
  update_with(test::make_bundle(bundles, "b3", "6.1-newest"), spec);
  CHECK(board.measured.size() == 5);
  CHECK(last_report(board, "COMMITTED")["throughput"]["baseline_release"] == "6.1-newer");
  // A board without a battery for its RTC can boot in 1970: a figure from the future is not
  // trusted either.
  board.clock = 1000;
  update_with(test::make_bundle(bundles, "b4", "6.1-latest"), spec);
  CHECK(board.measured.size() == 7);
}

TEST_CASE_METHOD(Fixture, "a gated board whose trial kernel cannot be measured goes back") {
  BenchSpec spec;
  spec.shape = "1b";
  spec.max_regression = 0.03;
  update_with(test::make_bundle(bundles, "b1", "6.1-new", "bench-fails"), spec);
  CHECK(board.running == k_old);
  auto gate = check_of(last_report(board, "VERIFY_FAILED"), "tokens_per_s_change");
  REQUIRE_FALSE(gate.is_null());
  CHECK(gate["pass"] == false);
  CHECK_THAT(gate["detail"].get<std::string>(), Catch::Contains("the trial kernel could not be measured"));
}
