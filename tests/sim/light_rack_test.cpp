// A rack of two light boards (fleet-sim light) under the real fleetctl: SSH to each board's
// own sshd chrooted into its folder, the host's fleet-agent pushed and run there, its tryboot
// and rollback reboots carried out by fleet-sim, reports over gRPC with TLS, SQLite state.
#include <signal.h>
#include <sys/prctl.h>
#include <sys/wait.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "tests/support/sshd.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

// A bundle as `fleetctl kernel build` makes it, with a fake kernel: light boards boot its
// contract, not its image.
std::filesystem::path make_bundle(const std::filesystem::path& dir, const std::string& release, const std::string& contract) {
  auto put = [&](const std::string& rel, const std::string& data) {
    std::filesystem::create_directories((dir / rel).parent_path());
    REQUIRE(fs::write_file_atomic(dir / rel, data));
  };
  put("boot/kernel_2712.img", "KERNEL " + release);
  put("boot/bcm2712-rpi-5-b.dtb", "dtb");
  put("boot/overlays/bcm2712d0.dtbo", "overlay");
  put("modules/lib/modules/" + release + "/kernel/drivers/net/dummy.ko", "ko");
  put("contract.json", R"({"kernel_release":")" + release + "\"," + contract + "}");
  put("config", "CONFIG_HZ=100\n");
  bundle::Manifest m;
  m.profile = "light-test";
  m.kernel_release = release;
  m.build_key = hash::sha256_hex(release);
  m.image = "boot/kernel_2712.img";
  m.cmdline_extra = {"transparent_hugepage=madvise"};
  REQUIRE(bundle::hash_tree(dir, m));
  REQUIRE(fs::write_file_atomic(dir / bundle::k_manifest, bundle::manifest_to_json(m)));
  return dir;
}

// The rack's folder must be one sshd chroots into: under the build tree (root's, 0755), not /tmp.
struct RackDir {
  std::filesystem::path path;
  explicit RackDir(const std::string& name)
      : path(std::filesystem::current_path() / ("light-" + name + "-" + std::to_string(::getpid()))) {
    std::filesystem::remove_all(path);
  }
  ~RackDir() {
    std::error_code ec;
    std::filesystem::remove_all(path, ec);
  }
};

struct LightRack {
  RackDir dir{"rack"};
  pid_t pid = 0;
  int base = test::free_port();

  LightRack(const std::filesystem::path& stock) {
    std::filesystem::create_directories(dir.path);
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the rack ends with this test, however it ends
      std::freopen((dir.path / "fleet-sim.log").c_str(), "w", stdout);
      ::dup2(1, 2);
      ::execl(FLEET_SIM, FLEET_SIM, "light", "-n", "2", "--rack", (dir.path / "rack").c_str(), "--bundle",
              stock.c_str(), "--base-port", std::to_string(base).c_str(), nullptr);
      ::_exit(127);
    }
    for (int i = 0; i < 600 && log().find("light rack ready") == std::string::npos; ++i) {
      if (::waitpid(pid, nullptr, WNOHANG) == pid) {
        pid = 0;
        break;
      }
      std::this_thread::sleep_for(100ms);
    }
    if (log().find("light rack ready") == std::string::npos) {
      stop();  // a REQUIRE in a constructor skips the destructor
      FAIL("fleet-sim light did not start:\n" << log());
    }
  }
  void stop() {
    if (pid > 0) {
      ::kill(pid, SIGTERM);
      ::waitpid(pid, nullptr, 0);
      pid = 0;
    }
  }
  ~LightRack() { stop(); }
  std::string log() const { return fs::read_file(dir.path / "fleet-sim.log").value_or(""); }
  std::filesystem::path rack() const { return dir.path / "rack"; }
  nlohmann::json status(const std::string& board) const {
    return nlohmann::json::parse(fs::read_file(rack() / board / "status.json").value());
  }
};

struct Ran {
  int exit_code = -1;
  std::string output;
};

Ran fleetctl(const LightRack& rack, std::vector<std::string> args) {
  const int report = test::free_port();
  args.insert(args.begin(), FLEETCTL);
  const std::vector<std::string> common = {"--inventory", (rack.rack() / "inventory.yml").string(), "--accept-new-host-keys",
                                           "--known-hosts", (rack.rack() / "known_hosts").string(), "--state",
                                           (rack.rack() / "fleet.db").string()};
  args.insert(args.end(), common.begin(), common.end());
  if (args[1] == "rollout") {
    const std::vector<std::string> reports = {"--agent", FLEET_HOST_AGENT, "--listen", "127.0.0.1:" + std::to_string(report),
                                              "--report-address", "127.0.0.1:" + std::to_string(report)};
    args.insert(args.end(), reports.begin(), reports.end());
  }
  Ran ran;
  auto r = process::run({args, {}, {}, 300s}, [&](std::string_view line) { ran.output += std::string(line) + "\n"; });
  REQUIRE(r);
  ran.exit_code = r->exit_code;
  return ran;
}

}  // namespace

TEST_CASE("fleetctl rolls a kernel out to light boards and back: tryboot, verify, commit, rollback") {
  if (::geteuid() != 0) {
    std::printf("skipped: light boards need root (mount and PID namespaces)\n");
    std::exit(77);
  }
  RackDir bundles("bundles");
  const auto stock = make_bundle(bundles.path / "stock", "6.1.0-light-stock",
                                 R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  const auto tuned = make_bundle(bundles.path / "tuned", "6.1.0-light-tuned",
                                 R"("page_size":16384,"thp":"madvise","numa_emulation":true,"hz":100,"tick":"NO_HZ_IDLE","headless":true)");
  LightRack rack(stock);
  CHECK(rack.status("pi-1")["release"] == "6.1.0-light-stock");
  const std::string first_boot = rack.status("pi-1")["boot_id"];

  auto out = fleetctl(rack, {"rollout", "--bundle", tuned.string()});
  INFO(out.output << "\n" << rack.log());
  REQUIRE(out.exit_code == 0);
  CHECK_THAT(out.output, Catch::Contains("done: 2 committed, 0 skipped, 0 failed"));
  for (const char* board : {"pi-1", "pi-2"}) {
    auto s = rack.status(board);
    INFO(board << ": " << s.dump());
    // One reboot, into the slot by tryboot.txt: the kernel its contract describes runs.
    CHECK(s["boots"] == 2);
    CHECK(s["tryboot"] == true);
    CHECK(s["release"] == "6.1.0-light-tuned");
    CHECK(fs::read_file(rack.rack() / board / "root/proc/sys/kernel/osrelease").value() == "6.1.0-light-tuned\n");
  }
  CHECK(rack.status("pi-1")["boot_id"] != first_boot);
  // The agent ran in the board's folder: its state, its slot, its /usr/local.
  CHECK(std::filesystem::exists(rack.rack() / "pi-1/usr-local/bin/fleet-agent"));
  CHECK(fs::read_file(rack.rack() / "pi-1/root/var/lib/fleet-agent/state.json").value().find("6.1.0-light-tuned") !=
        std::string::npos);

  // Rollback: a normal reboot, config.txt pointing at the stock kernel again.
  auto back = fleetctl(rack, {"rollback", "--limit", "pi-2"});
  INFO(back.output);
  REQUIRE(back.exit_code == 0);
  auto s = rack.status("pi-2");
  CHECK(s["boots"] == 3);
  CHECK(s["tryboot"] == false);
  CHECK(s["release"] == "6.1.0-light-stock");
  CHECK(rack.status("pi-1")["release"] == "6.1.0-light-tuned");

  // Every board's processes end with the rack: its ports are closed.
  rack.stop();
  for (int port : {rack.base + 1, rack.base + 2}) CHECK_FALSE(test::port_open(port));
}
