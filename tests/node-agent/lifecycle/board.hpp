#pragma once
// A simulated Pi 5 board for agent tests: a boot partition and root in a temp folder, the
// firmware's boot rules (sim/firmware) deciding which kernel runs at each power-on, and a
// System whose reboots the test carries out. A kernel file's content names its release and
// its faults: "KERNEL 6.1-new thp-never" boots but shows THP never; "... panic" never boots.
#include <catch2/catch.hpp>
#include <optional>
#include <string>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "node-agent/lifecycle/lifecycle.hpp"
#include "sim/firmware.hpp"
#include "tests/support/temp_dir.hpp"

namespace fleet::test {

inline const std::string k_old = "6.1-old";
inline const std::string k_stock_config = "# stock Raspberry Pi OS\n[all]\ndtparam=watchdog=on\n";

class SimBoard : public agent::System {
 public:
  SimBoard() : paths{dir.path()} {
    dir.write("boot/firmware/config.txt", k_stock_config);
    dir.write("boot/firmware/kernel_2712.img", "KERNEL " + k_old);
    dir.write("boot/firmware/cmdline.txt", "console=ttyAMA0 root=/dev/vda rw transparent_hugepage=always\n");
    dir.write("lib/modules/" + k_old + "/modules.dep", "");
    running = k_old;
  }

  // System
  std::string running_release() override { return running; }
  Result<std::optional<bootloader::Info>> bootloader() override {
    if (bootloader_unreadable) return fail(Errc::parse, "chosen/bootloader/tryboot: 3 bytes, a device-tree u32 has 4");
    return loader;
  }
  agent::Report verify(const Contract& c) override {
    agent::Observations o;
    o.page_size_sysconf = 16384;
    o.smaps = "KernelPageSize: 16 kB\n";
    o.thp_enabled = faults.find("thp-never") != std::string::npos ? "always madvise [never]" : "always [madvise] never";
    o.nodes_online = "0-1";
    o.kernel_config = "CONFIG_HZ=100\nCONFIG_NO_HZ_IDLE=y\n";
    o.osrelease = running;
    o.meminfo = "MemTotal: 1000 kB\nMemAvailable: 900 kB\n";
    o.bootloader = loader;
    return agent::evaluate(c, o);
  }
  // Throughput by fault: "slow" runs at 1 token/s, "bench-fails" cannot measure, else 5;
  // "undervolt": the board reports under-voltage and 84 C with its figure.
  Result<agent::Throughput> measure(const agent::BenchSpec& spec) override {
    measured.push_back(spec);
    if (faults.find("bench-fails") != std::string::npos) return fail(Errc::unsupported, "not enough memory");
    agent::Throughput t;
    t.tokens_per_s = faults.find("slightly-slow") != std::string::npos ? 4.9
                     : faults.find("slow") != std::string::npos        ? 1.0
                                                                        : 5.0;
    t.measured_by = "probe " + spec.shape;
    t.detail.set_shape(spec.shape);
    t.detail.set_tokens_per_s(t.tokens_per_s);
    t.detail.set_tokens_timed(29);  // a Pi 5's 1b shape in 2 s, at a 5% spread
    t.detail.set_spread(0.05);
    t.detail.set_effective_gbps(9.5);
    if (faults.find("undervolt") != std::string::npos) {  // a weak supply on a hot board
      t.health.undervoltage = true;
      t.health.temperature_c = 84.0;
      t.detail.set_undervoltage(true);
      t.detail.set_temperature_c(84.0);
    }
    return t;
  }
  std::string measure_method(const agent::BenchSpec&) override { return method; }
  Result<void> reboot(agent::RebootMode mode) override {
    reboot_request = mode;
    return {};
  }
  std::int64_t now_ms() override { return ++clock; }

  // The firmware at power-on. Every power-on must find a kernel that boots: the one
  // guarantee the agent gives. A panicking kernel resets the board (watchdog), and the
  // flag is gone by then, so the firmware reads config.txt.
  void power_on(bool tryboot_flag) {
    ++boots;
    reboot_request.reset();
    auto reader = [this](const std::string& p) { return fs::read_file(paths.boot() / p).value_or(std::string()); };
    sim::BootFileReader read = [this](const std::string& p) -> std::optional<std::string> {
      auto r = fs::read_file(paths.boot() / p);
      if (!r) return std::nullopt;
      return *r;
    };
    auto choice = sim::choose_boot(read, tryboot_flag || stuck_tryboot);
    INFO("power-on " << boots << (tryboot_flag ? " (tryboot)" : ""));
    REQUIRE(choice);
    std::string content = reader(choice->kernel);
    REQUIRE(content.starts_with("KERNEL "));
    std::string rest = content.substr(7);
    std::string release = rest.substr(0, rest.find(' '));
    if (rest.find("panic") != std::string::npos) {
      REQUIRE((tryboot_flag || stuck_tryboot));  // a panicking committed kernel would brick the board
      REQUIRE(boots < 50);
      power_on(false);
      return;
    }
    running = release;
    faults = rest;
  }

  std::string config() { return fs::read_file(paths.boot() / "config.txt").value(); }
  agent::AgentState state() {
    auto text = fs::read_file(paths.state_file());
    REQUIRE(text);
    auto s = agent::parse_state(*text, "state.json");
    REQUIRE(s);
    return *s;
  }
  std::vector<std::string> outbox_phases() {
    std::vector<std::string> names, phases;
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(paths.outbox(), ec)) {
      if (e.path().extension() == ".json") names.push_back(e.path().string());
    }
    std::sort(names.begin(), names.end());
    for (const auto& n : names) {
      auto text = fs::read_file(n).value();
      auto at = text.find("\"phase\":\"");
      phases.push_back(text.substr(at + 9, text.find('"', at + 9) - at - 9));
    }
    return phases;
  }
  bool has_partial_files() {
    for (auto& e : std::filesystem::recursive_directory_iterator(dir.path())) {
      auto n = e.path().filename().string();
      if (n.ends_with(".partial") || n.find(".tmp-") != std::string::npos) return true;
    }
    return false;
  }

  TempDir dir{"fleet-board"};
  agent::BoardPaths paths;
  std::string running;
  // chosen/bootloader of the device tree: none (not a Pi firmware) unless a test sets one.
  std::optional<bootloader::Info> loader;
  bool bootloader_unreadable = false;
  std::string faults;
  std::string method = "probe method 1";  // how measure() measures: an agent upgrade may change it
  std::optional<agent::RebootMode> reboot_request;
  bool stuck_tryboot = false;  // a broken firmware that keeps the flag: for loop tests
  int boots = 0;
  std::int64_t clock = 0;
  std::vector<agent::BenchSpec> measured;
};

// A bundle as `fleetctl kernel build` makes it, with a fake kernel.
inline std::filesystem::path make_bundle(const TempDir& dir, const std::string& name, const std::string& release,
                                         const std::string& faults = "", const std::string& key = "") {
  auto b = dir / name;
  dir.write(name + "/boot/kernel_2712.img", "KERNEL " + release + (faults.empty() ? "" : " " + faults));
  dir.write(name + "/boot/bcm2712-rpi-5-b.dtb", "dtb");
  dir.write(name + "/boot/overlays/bcm2712d0.dtbo", "overlay");
  dir.write(name + "/modules/lib/modules/" + release + "/kernel/drivers/net/dummy.ko", "ko");
  dir.write(name + "/contract.json", R"({"kernel_release":")" + release +
                                         R"(","page_size":16384,"thp":"madvise","numa_nodes":2,"hz":100,"tick":"NO_HZ_IDLE","headless":true})");
  dir.write(name + "/config", "CONFIG_HZ=100\n");
  bundle::Manifest m;
  m.profile = "test";
  m.kernel_release = release;
  m.build_key = key.empty() ? "b" + std::string(63, name.back()) : key;
  m.image = "boot/kernel_2712.img";
  m.cmdline_extra = {"console=ttyAMA0", "transparent_hugepage=madvise", "quiet"};
  REQUIRE(bundle::hash_tree(b, m));
  REQUIRE(fs::write_file_atomic(b / bundle::k_manifest, bundle::manifest_to_json(m)));
  return b;
}

// Carries out the reboots the agent asks for, running boot-check after each power-on,
// until the board settles (no reboot asked). Errors from boot-check are tolerated: the
// board stays up and a later boot tries again.
inline void settle(SimBoard& board, agent::Agent& agent, int max_boots = 12) {
  for (int i = 0; i < max_boots; ++i) {
    if (!board.reboot_request) return;
    board.power_on(*board.reboot_request == agent::RebootMode::tryboot);
    (void)agent.boot_check();
  }
  FAIL("the board did not settle in " << max_boots << " boots");
}

}  // namespace fleet::test
