#pragma once
// A rack of light boards (fleet-sim light) for tests that run the real fleetctl against it,
// and the bundles it boots. The test target defines FLEETCTL, FLEET_SIM and FLEET_HOST_AGENT
// (the binaries' paths) and depends on those targets.
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

namespace fleet::test {

using namespace std::chrono_literals;

// A bundle as `fleetctl kernel build` makes it, with a fake kernel: light boards boot its
// contract, not its image.
inline std::filesystem::path make_bundle(const std::filesystem::path& dir, const std::string& release, const std::string& contract) {
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
  int base;

  // `extra`: more fleet-sim light options (--models-size KIB).
  explicit LightRack(const std::filesystem::path& stock, int boards = 2, std::vector<std::string> extra = {})
      : base(test::free_port_run(boards + 1)) {
    std::filesystem::create_directories(dir.path);
    std::vector<std::string> args{FLEET_SIM, "light", "-n", std::to_string(boards), "--rack", (dir.path / "rack").string(),
                                  "--bundle", stock.string(), "--base-port", std::to_string(base)};
    args.insert(args.end(), extra.begin(), extra.end());
    std::vector<char*> argv;
    for (auto& a : args) argv.push_back(a.data());
    argv.push_back(nullptr);
    pid = ::fork();
    if (pid == 0) {
      ::prctl(PR_SET_PDEATHSIG, SIGTERM);  // the rack ends with this test, however it ends
      std::freopen((dir.path / "fleet-sim.log").c_str(), "w", stdout);
      ::dup2(1, 2);
      ::execv(FLEET_SIM, argv.data());
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

// fleetctl's command line for `args` against the rack: its inventory, known hosts and state,
// and for a rollout the host agent and a report port of its own.
inline std::vector<std::string> fleetctl_argv(const LightRack& rack, std::vector<std::string> args) {
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
  return args;
}

inline Ran fleetctl(const LightRack& rack, std::vector<std::string> args) {
  args = fleetctl_argv(rack, std::move(args));
  Ran ran;
  auto r = process::run({args, {}, {}, 300s}, [&](std::string_view line) { ran.output += std::string(line) + "\n"; });
  REQUIRE(r);
  ran.exit_code = r->exit_code;
  return ran;
}


}  // namespace fleet::test
