#pragma once
// One virtual Pi 5 board for end-to-end tests of the agent's update flow: real QEMU, the
// firmware emulator choosing kernels, the tryboot flag learnt from the console, sshd on the
// board, gRPC reports to a real server in the test. Shared by the qemu-virt and rpi5 tests.
#include <signal.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <mutex>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/process.hpp"
#include "controller/reports/report_server.hpp"
#include "controller/tls/authority.hpp"
#include "sim/board.hpp"
#include "sim/disk_image.hpp"
#include "tests/support/sshd.hpp"
#include "tests/support/temp_dir.hpp"

namespace fleet::test {

using namespace std::chrono_literals;

const std::filesystem::path k_bundles = FLEET_E2E_BUNDLES;
// Long enough for a loaded CI machine to reach init under TCG (2-5 s here), short enough
// for the hang case to end soon.
constexpr auto k_watchdog = std::chrono::seconds(60);

// What the board is and what it will be updated to.
struct RackSpec {
  std::filesystem::path bundles = k_bundles;
  std::string stock = "qemu-virt-stock";  // its first kernel
  // Bundles update() may install (each gets a token for rollout r-NAME).
  std::vector<std::string> updates = {"qemu-virt", "qemu-virt-thp-never", "qemu-virt-panic", "qemu-virt-hang",
                                      "qemu-virt-stock"};
  sim::Machine machine = sim::default_machine();
  // Install (hashing every module under TCG) and the trial boot: 1,300 modules take longer.
  std::chrono::seconds update_timeout{300};
};

struct Rack {
  RackSpec spec;
  test::TempDir dir{"fleet-rack"};
  sim::BoardFiles board{dir / "pi-1"};
  int ssh_port = test::free_port();
  std::atomic<bool> stop{false};
  std::atomic<bool> runner_done{true};
  std::thread runner;
  std::mutex mu;
  std::vector<fleet::v1::PhaseReport> reports;
  tls::Authority ca = tls::Authority::open_or_create(dir / "tls").value();
  std::unique_ptr<store::Store> store = store::Store::open(dir / "fleet.db").value();
  std::unique_ptr<controller::ReportServer> server;

  explicit Rack(RackSpec s = {}) : spec(std::move(s)) {
    // The board's token, for each update's rollout id (r-BUNDLE, see update()).
    controller::TokenBook tokens;
    for (const auto& b : spec.updates) tokens.add("pi-1", "r-" + b, "tok-1");
    auto started = controller::ReportServer::start({"127.0.0.1:0", ca.issue_server().value()}, tokens, *store,
                                             [this](const fleet::v1::PhaseReport& r) {
                                               std::lock_guard lock(mu);
                                               reports.push_back(r);
                                             });
    REQUIRE(started);
    server = std::move(*started);
    REQUIRE(process::capture({{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / "id").string()}, {}, {}, 30s}));
    sim::CreateOptions c;
    c.dir = board.dir;
    c.name = "pi-1";
    c.rootfs = FLEET_BOARD_ROOTFS;
    c.kernel_bundle = spec.bundles / spec.stock;
    c.machine = spec.machine;
    c.agent = FLEET_AARCH64_AGENT;
    c.authorized_key = dir / "id.pub";
    c.ssh_port = ssh_port;
    // The agent's identity and units, written with the agent's own command (the host build)
    // into the root file system before it becomes the board's image.
    c.prepare_root = [this](const std::filesystem::path& root) -> Result<void> {
      auto r = process::capture({{FLEET_HOST_AGENT, "setup", "--root", root.string(), "--board-id", "pi-1",
                                  "--controller", "10.0.2.2:" + std::to_string(server->port()), "--token", "tok-1",
                                  "--ca", ca.certificate_file().string()},
                                 {}, {}, 30s});
      if (!r) return std::unexpected(r.error());
      return {};
    };
    auto created = sim::create_board(c);
    if (!created) FAIL(created.error().message);
    power_on();
    wait_ready(1);
  }

  // Starts the firmware emulator (the board boots); it runs until the board is off.
  void power_on() {
    if (!runner_done) stop = true;  // a runner still going (a cut that missed): end it first
    if (runner.joinable()) runner.join();
    stop = false;
    runner_done = false;
    runner = std::thread([this] {
      sim::RunOptions o;
      o.board = board;
      o.watchdog = k_watchdog;
      auto r = sim::run_board(o, stop);
      if (!r) WARN("board runner: " << r.error().message);
      runner_done = true;
    });
  }

  // Pulls the plug: SIGKILL to the board's QEMU, whatever it is doing. The board stays off
  // (the runner returns) until power_on(). False if QEMU was not running.
  bool power_cut() {
    // Between two boots the runner has no QEMU for a moment (it reads the boot partition),
    // and status.json may still name a QEMU that has just exited on a reboot (a signal to
    // it, not yet reaped, "succeeds"): kill whatever QEMU runs until the runner stops.
    for (int tries = 0; tries < 300 && !runner_done; ++tries) {
      const int pid = status().qemu_pid;
      if (pid > 0) (void)::kill(pid, SIGKILL);  // ESRCH: it was gone; the loop looks again
      std::this_thread::sleep_for(100ms);
    }
    if (!runner_done) return false;
    if (runner.joinable()) runner.join();
    return true;
  }
  ~Rack() {
    stop = true;
    if (runner.joinable()) runner.join();
  }

  sim::BoardStatus status() {
    auto s = sim::read_status(board);
    return s ? *s : sim::BoardStatus{};
  }

  void wait_ready(int min_boots) {
    auto until = std::chrono::steady_clock::now() + 240s;
    while (std::chrono::steady_clock::now() < until) {
      auto s = status();
      if (s.state == "ready" && s.boots >= min_boots) return;
      std::this_thread::sleep_for(250ms);
    }
    FAIL("board not ready after 240 s; console:\n" << console_tail());
  }

  std::string console_tail() {
    auto c = fs::read_file(board.console_log()).value_or("");
    return c.substr(c.size() > 3000 ? c.size() - 3000 : 0);
  }

  // Why a connection was refused, if it was: systemd reports a failing ssh.service on the
  // console (the journal lives in the board's RAM).
  std::string board_log() { return console_tail(); }

  std::vector<std::string> ssh_options() {
    return {"-i", (dir / "id").string(), "-o", "BatchMode=yes", "-o", "LogLevel=ERROR", "-o",
            "StrictHostKeyChecking=accept-new", "-o", "UserKnownHostsFile=" + (dir / "known_hosts").string(), "-o",
            "ConnectTimeout=20"};
  }

  Result<std::string> ssh(const std::string& command, std::chrono::seconds timeout = 120s) {
    std::vector<std::string> argv = {"ssh", "-p", std::to_string(ssh_port)};
    for (auto& o : ssh_options()) argv.push_back(o);
    argv.insert(argv.end(), {"root@127.0.0.1", command});
    return process::capture({argv, {}, {}, timeout});
  }

  // The agent's state file, read on the board (its root is an ext4 image the board holds).
  nlohmann::json agent_state() {
    auto text = ssh("cat /var/lib/fleet-agent/state.json", 60s);
    if (!text) return {};
    return nlohmann::json::parse(*text, nullptr, false);
  }

  // Pushes a bundle to the board (scp, as fleetctl pushes over SFTP), then installs and
  // trial-boots it over SSH, as the controller will; returns once the agent has concluded
  // and the board is ready.
  // Copies a bundle to the board's /var/tmp (scp, as fleetctl pushes over SFTP).
  void push(const std::string& bundle_name) {
    std::vector<std::string> scp = {"scp", "-r", "-q", "-P", std::to_string(ssh_port)};
    for (auto& o : ssh_options()) scp.push_back(o);
    scp.insert(scp.end(), {(spec.bundles / bundle_name).string(), "root@127.0.0.1:/var/tmp/" + bundle_name});
    auto r = process::capture({scp, {}, {}, 300s});
    if (!r) FAIL("scp " << bundle_name << ": " << r.error().message);
  }

  nlohmann::json update(const std::string& bundle_name) {
    auto before = agent_state();
    auto seq = before.is_object() ? before.value("sequence", 0) : 0;
    push(bundle_name);
    int boots = status().boots;
    auto r = ssh("fleet-agent install --bundle /var/tmp/" + bundle_name + " --rollout r-" + bundle_name +
                 " && fleet-agent tryboot",
                 spec.update_timeout);
    // The connection drops when the board reboots: the exit status is not the result.
    INFO((r ? *r : r.error().message));
    auto until = std::chrono::steady_clock::now() + spec.update_timeout;
    while (std::chrono::steady_clock::now() < until) {
      // The board first, over SSH only once it is ready again (a login costs the board a
      // second or two of emulated CPU).
      auto s = status();
      if (s.state == "ready" && s.boots > boots) {
        auto st = agent_state();
        if (st.is_object() && st.value("state", "") == "idle" && st.value("sequence", 0) > seq && st.contains("last")) {
          return st;
        }
      }
      std::this_thread::sleep_for(1s);
    }
    FAIL("the update did not conclude in " << spec.update_timeout.count() << " s; console:\n" << console_tail());
    return {};
  }

  std::vector<std::string> phases_for(const std::string& rollout, size_t want) {
    auto until = std::chrono::steady_clock::now() + 90s;
    std::vector<std::string> out;
    while (std::chrono::steady_clock::now() < until) {
      out.clear();
      {
        std::lock_guard lock(mu);
        for (const auto& r : reports)
          if (r.rollout_id() == rollout) out.push_back(fleet::v1::Phase_Name(r.phase()));
      }
      if (out.size() >= want) break;
      std::this_thread::sleep_for(250ms);
    }
    return out;
  }

  std::string uname() {
    auto r = ssh("uname -r");
    if (!r) FAIL("ssh uname -r: " << r.error().message << "\nboard log:\n" << board_log());
    auto s = *r;
    while (!s.empty() && s.back() == '\n') s.pop_back();
    return s;
  }
};

inline std::string release_of(const std::string& bundle_name, const std::filesystem::path& bundles = k_bundles) {
  auto m = bundle::verify(bundles / bundle_name);
  REQUIRE(m);
  return m->kernel_release;
}

}  // namespace fleet::test
