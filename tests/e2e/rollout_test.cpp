// fleetctl rollout on a rack of three virtual Pi 5 boards, driven through the real CLI:
// SSH (libssh) to real sshd on the boards, gRPC reports over TLS, SQLite state.
#include <signal.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "proto/codec.hpp"
#include "proto/fleet.pb.h"
#include "common/fs.hpp"
#include "common/process.hpp"
#include "controller/store/store.hpp"
#include "sim/board.hpp"
#include "tests/support/sshd.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

const std::filesystem::path k_bundles = FLEET_E2E_BUNDLES;

struct Rack {
  test::TempDir dir{"fleet-rack3"};
  std::atomic<bool> stop{false};
  std::vector<std::thread> runners;
  std::vector<int> ports;
  int report_port = test::free_port();

  Rack() {
    REQUIRE(process::capture({{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", (dir / "id").string()}, {}, {}, 30s}));
    // The smallest probe shape: TCG emulates the NEON dot product slowly.
    std::string inventory = "all:\n  vars:\n    address: 127.0.0.1\n    fleet_bench: 15m\n    key: " +
                            (dir / "id").string() + "\n  hosts:\n";
    for (int i = 1; i <= 3; ++i) {
      std::string name = "pi-" + std::to_string(i);
      int port = test::free_port();
      ports.push_back(port);
      sim::CreateOptions c;
      c.dir = dir / name;
      c.name = name;
      c.rootfs = FLEET_BOARD_ROOTFS;
      c.kernel_bundle = k_bundles / "qemu-virt-stock";
      c.authorized_key = dir / "id.pub";  // no agent: fleetctl pushes it
      c.ssh_port = port;
      auto created = sim::create_board(c);
      if (!created) FAIL(created.error().message);
      inventory += "    " + name + ":\n      port: " + std::to_string(port) + "\n";
      runners.emplace_back([this, name] {
        sim::RunOptions o;
        o.board = sim::BoardFiles{dir / name};
        o.watchdog = 120s;
        (void)sim::run_board(o, stop);
      });
    }
    dir.write("inventory.yml", inventory);
    // The same rack as a board class that demands more tokens/s than any board gives.
    auto demanding = inventory;
    demanding.replace(demanding.find("fleet_bench: 15m"), 16, "fleet_bench: 15m\n    fleet_min_tokens_per_s: 1000000");
    dir.write("demanding.yml", demanding);
    // Release keys: the rollouts take signed copies of the bundles and --trust-key.
    REQUIRE(process::capture({{FLEETCTL, "bundle", "keygen", "--out", (dir / "release").string()}, {}, {}, 30s}));
    for (const char* b : {"qemu-virt", "qemu-virt-thp-never", "qemu-virt-stock"}) {
      std::filesystem::create_directories(dir / "signed");
      REQUIRE(process::capture({{"cp", "-a", (k_bundles / b).string(), (dir / "signed" / b).string()}, {}, {}, 60s}));
      REQUIRE(process::capture(
          {{FLEETCTL, "bundle", "sign", (dir / "signed" / b).string(), "--key", (dir / "release").string()}, {}, {}, 60s}));
    }
    for (int i = 1; i <= 3; ++i) wait_ready("pi-" + std::to_string(i), 1);
  }
  ~Rack() {
    stop = true;
    for (auto& t : runners) t.join();
  }

  // A command on board i (0-based) over SSH, as root.
  Result<std::string> on_board(int i, const std::string& command) {
    return process::capture({{"ssh", "-i", (dir / "id").string(), "-p", std::to_string(ports[i]), "-o", "BatchMode=yes",
                              "-o", "LogLevel=ERROR", "-o", "StrictHostKeyChecking=no", "-o",
                              "UserKnownHostsFile=/dev/null", "root@127.0.0.1", command},
                             {}, {}, 60s});
  }

  void wait_ready(const std::string& name, int min_boots) {
    auto until = std::chrono::steady_clock::now() + 240s;
    while (std::chrono::steady_clock::now() < until) {
      auto s = sim::read_status(sim::BoardFiles{dir / name});
      if (s && s->state == "ready" && s->boots >= min_boots) return;
      std::this_thread::sleep_for(250ms);
    }
    FAIL(name << " not ready");
  }

  // Signed copies with --trust-key, or (signed = false) the bundles as built, unsigned.
  bool signed_bundles = true;
  bool pass_trust_key = true;  // false: --resume must take the key the rollout was started with
  std::vector<std::string> rollout_argv(const std::string& bundle, const std::vector<std::string>& extra) {
    std::vector<std::string> a = {FLEETCTL, "rollout", "--bundle",
                                  (signed_bundles ? dir / "signed" / bundle : k_bundles / bundle).string(), "--inventory",
                                  (dir / inventory_file).string(), "--state", (dir / "fleet.db").string(),
                                  "--agent", FLEET_AARCH64_AGENT, "--accept-new-host-keys", "--known-hosts",
                                  (dir / "known_hosts").string(), "--listen", "127.0.0.1:" + std::to_string(report_port),
                                  "--report-address", "10.0.2.2:" + std::to_string(report_port)};
    if (signed_bundles && pass_trust_key) a.insert(a.end(), {"--trust-key", (dir / "release.pub").string()});
    a.insert(a.end(), extra.begin(), extra.end());
    return a;
  }
  std::string inventory_file = "inventory.yml";

  process::Outcome rollout(const std::string& bundle, const std::vector<std::string>& extra, std::string& output) {
    output.clear();
    auto r = process::run({rollout_argv(bundle, extra), {}, {}, 900s}, [&](std::string_view l) {
      output.append(l);
      output.push_back('\n');
    });
    REQUIRE(r);
    return *r;
  }

  // fleetctl status --json read back through the codec a script's protobuf library would use.
  fleet::v1::StatusSnapshot status() {
    auto out = process::capture({{FLEETCTL, "status", "--json", "--state", (dir / "fleet.db").string()}, {}, {}, 60s});
    REQUIRE(out);
    auto snap = wire::parse<fleet::v1::StatusSnapshot>(*out, "fleetctl status --json");
    REQUIRE(snap);
    return *snap;
  }

  std::vector<store::BoardRow> rows(const std::string& id) {
    auto st = store::Store::open(dir / "fleet.db");
    REQUIRE(st);
    auto b = (*st)->boards(id);
    REQUIRE(b);
    return *b;
  }

  std::string release(const std::string& name) {
    return sim::read_status(sim::BoardFiles{dir / name}).value_or(sim::BoardStatus{}).release;
  }
};

std::string rollout_id(const std::string& output) {
  auto at = output.find("rollout r");
  REQUIRE(at != std::string::npos);
  auto start = at + 8;
  return output.substr(start, output.find_first_of(": ", start) - start);
}

}  // namespace

TEST_CASE("rollout on three virtual boards: two waves, a canary that stops a bad bundle, a kill and a resume") {
  Rack rack;
  std::string out;

  {
    INFO("a good bundle commits everywhere in two waves");
    auto r = rack.rollout("qemu-virt", {"--serial", "1,100%"}, out);
    INFO(out);
    CHECK(r.exit_code == 0);
    auto id = rollout_id(out);
    auto rows = rack.rows(id);
    REQUIRE(rows.size() == 3);
    for (const auto& b : rows) {
      CHECK(b.outcome == vocab::Outcome::committed);
      CHECK(b.wave == (b.board == "pi-1" ? 0 : 1));
    }
    auto st = rack.status();
    REQUIRE(st.boards_size() == 3);
    for (const auto& b : st.boards()) {
      INFO(b.DebugString());
      CHECK(b.outcome() == "committed");
      CHECK(b.kernel_release().ends_with("-fleet-qemu"));
      CHECK(b.checks_size() == 9);  // the contract's 7, tokens_per_s and the bootloader
      // Throughput measured on the board by its agent, carried over gRPC into the state database.
      REQUIRE(b.has_throughput());
      CHECK(b.throughput().shape() == "15m");
      CHECK(b.throughput().dot_path() == "neon-dotprod");
      CHECK(b.throughput().layout() == "q4_0_4x4");  // -cpu cortex-a76: what ggml repacks into on a Pi 5
      CHECK(b.throughput().tokens_per_s() > 0);
      CHECK(b.throughput().read_gbps() > 0);
      CHECK(b.throughput().hugepage_advice() == "none");  // the probe's weights, as llama.cpp's
      CHECK(b.throughput().numa_nodes() == 2);
    }
    auto table = process::capture({{FLEETCTL, "status", "--state", (rack.dir / "fleet.db").string()}, {}, {}, 60s});
    REQUIRE(table);
    CHECK_THAT(*table, Catch::Contains(" t/s 15m"));
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) CHECK(rack.release(n).ends_with("-fleet-qemu"));

    // Those reports came over TLS: the controller made its CA beside the state, said where
    // it listens, and set every board up to trust that CA alone.
    CHECK_THAT(out, Catch::Contains("reports: listening on 127.0.0.1:" + std::to_string(rack.report_port) +
                                    " (--listen), TLS with CN=fleetctl CA "));
    CHECK_THAT(out, Catch::Contains("boards dial 10.0.2.2:" + std::to_string(rack.report_port)));
    const auto ca = fs::read_file(rack.dir / "tls/ca.pem");
    REQUIRE(ca);
    CHECK((std::filesystem::status(rack.dir / "tls/ca.key").permissions() & std::filesystem::perms::all) ==
          (std::filesystem::perms::owner_read | std::filesystem::perms::owner_write));
    for (int i = 0; i < 3; ++i) {
      INFO("pi-" << i + 1);
      // Read on the board itself: its root is an ext4 image that the running board holds.
      auto on_board = rack.on_board(i, "cat /etc/fleet-agent/ca.pem");
      REQUIRE(on_board);
      CHECK(*on_board == *ca);
    }
  }
  {
    INFO("a rerun skips boards already on the bundle");
    auto r = rack.rollout("qemu-virt", {}, out);
    INFO(out);
    CHECK(r.exit_code == 0);
    CHECK_THAT(out, Catch::Contains("3 skipped"));
  }
  {
    INFO("every board trusts the release key now");
    auto key_id = process::capture({{FLEETCTL, "bundle", "verify", (rack.dir / "signed/qemu-virt").string(), "--trust-key",
                                     (rack.dir / "release.pub").string(), "--json"},
                                    {}, {}, 60s});
    REQUIRE(key_id);
    const auto id = nlohmann::json::parse(*key_id)["key_id"].get<std::string>();
    for (int i = 0; i < 3; ++i) {
      INFO("pi-" << i + 1);
      auto listed = rack.on_board(i, "ls /etc/fleet-agent/trusted-keys");
      REQUIRE(listed);
      CHECK_THAT(*listed, Catch::Contains(id + ".pem"));
    }

    rack.signed_bundles = false;
    INFO("a dry run of an unsigned bundle says every board would refuse it");
    auto dry = rack.rollout("qemu-virt-stock", {"--dry-run"}, out);
    INFO(out);
    CHECK(dry.exit_code == 0);
    const std::string refusal = "the board would refuse it: it trusts key " + id + " and the bundle is not signed";
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) {
      const auto at = out.find(std::string("] ") + n + ": ");
      REQUIRE(at != std::string::npos);
      CHECK_THAT(out.substr(at, out.find('\n', at) - at), Catch::Contains(refusal));
    }

    INFO("an unsigned bundle: the controller refuses it before touching a board");
    auto boots1 = sim::read_status(sim::BoardFiles{rack.dir / "pi-1"})->boots;
    auto refused = rack.rollout("qemu-virt-stock", {"--trust-key", (rack.dir / "release.pub").string()}, out);
    INFO(out);
    CHECK(refused.exit_code == 2);
    CHECK_THAT(out, Catch::Contains("is not signed"));

    INFO("pushed anyway (no --trust-key): the canary's agent refuses it and nothing else starts");
    auto r = rack.rollout("qemu-virt-stock", {"--serial", "1,100%", "--max-fail", "0%"}, out);
    rack.signed_bundles = true;
    INFO(out);
    CHECK(r.exit_code == 1);
    for (const auto& b : rack.rows(rollout_id(out))) {
      INFO(b.board << ": " << vocab::name(b.outcome) << " " << b.message);
      CHECK(b.outcome == (b.board == "pi-1" ? vocab::Outcome::install_failed : vocab::Outcome::not_started));
      if (b.board == "pi-1") CHECK_THAT(b.message, Catch::Contains("is not signed"));
    }
    CHECK(sim::read_status(sim::BoardFiles{rack.dir / "pi-1"})->boots == boots1);  // never rebooted
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) CHECK(rack.release(n).ends_with("-fleet-qemu"));
  }
  {
    INFO("a bad bundle fails on the canary, is rolled back there, and no other board is touched");
    auto before2 = sim::read_status(sim::BoardFiles{rack.dir / "pi-2"})->boots;
    auto r = rack.rollout("qemu-virt-thp-never", {"--serial", "1,100%", "--max-fail", "0%"}, out);
    INFO(out);
    CHECK(r.exit_code == 1);
    auto rows = rack.rows(rollout_id(out));
    for (const auto& b : rows) {
      INFO(b.board << ": " << vocab::name(b.outcome) << " " << b.message);
      CHECK(b.outcome == (b.board == "pi-1" ? vocab::Outcome::rolled_back : vocab::Outcome::not_started));
    }
    CHECK_THAT(out, Catch::Contains("the remaining waves do not start"));
    CHECK(sim::read_status(sim::BoardFiles{rack.dir / "pi-2"})->boots == before2);
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) CHECK(rack.release(n).ends_with("-fleet-qemu"));
  }
  {
    INFO("a board class's minimum tokens/s: a kernel below it fails verification on the canary and goes back");
    rack.inventory_file = "demanding.yml";
    auto r = rack.rollout("qemu-virt-stock", {"--serial", "1,100%", "--max-fail", "0%"}, out);
    rack.inventory_file = "inventory.yml";
    INFO(out);
    CHECK(r.exit_code == 1);
    for (const auto& b : rack.rows(rollout_id(out))) {
      INFO(b.board << ": " << vocab::name(b.outcome) << " " << b.message);
      CHECK(b.outcome == (b.board == "pi-1" ? vocab::Outcome::rolled_back : vocab::Outcome::not_started));
      if (b.board == "pi-1") CHECK_THAT(b.message, Catch::Contains("tokens_per_s expected >= 1000000"));
    }
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) CHECK(rack.release(n).ends_with("-fleet-qemu"));
  }
  {
    INFO("the controller killed mid-rollout and resumed: every board ends committed, none lost");
    auto argv = rack.rollout_argv("qemu-virt-stock", {"--serial", "3"});
    pid_t pid = ::fork();
    if (pid == 0) {
      std::freopen((rack.dir / "killed.log").c_str(), "w", stdout);
      std::vector<char*> a;
      for (auto& s : argv) a.push_back(s.data());
      a.push_back(nullptr);
      ::execv(a[0], a.data());
      ::_exit(127);
    }
    // Kill it once some board is waiting for its trial boot.
    bool killed = false;
    std::string id;
    auto until = std::chrono::steady_clock::now() + 300s;
    while (!killed && std::chrono::steady_clock::now() < until) {
      std::this_thread::sleep_for(200ms);
      auto text = fs::read_file(rack.dir / "killed.log").value_or("");
      if (text.find("rollout r") == std::string::npos) continue;
      id = rollout_id(text);
      for (const auto& b : rack.rows(id)) {
        if (b.step == vocab::Step::await_boot || b.step == vocab::Step::await_outcome || b.step == vocab::Step::reboot) killed = true;
      }
      if (killed) ::kill(pid, SIGKILL);
    }
    ::waitpid(pid, nullptr, 0);
    REQUIRE(killed);
    rack.pass_trust_key = false;
    auto r = rack.rollout("qemu-virt-stock", {"--resume", id}, out);
    rack.pass_trust_key = true;
    INFO(out);
    CHECK(r.exit_code == 0);
    CHECK_THAT(out, Catch::Contains("resuming rollout " + id));
    CHECK_THAT(out, Catch::Contains("bundle signed by key"));  // the saved --trust-key, checked again
    bool listed = false;
    const auto st = rack.status();  // held: a range-for over a temporary's member would dangle
    INFO(st.DebugString());
    for (const auto& ro : st.rollouts()) {
      if (ro.id() != id) continue;
      listed = true;
      CHECK(ro.signed_by().size() == 16);
    }
    CHECK(listed);
    for (const auto& b : rack.rows(id)) {
      INFO(b.board << ": " << vocab::name(b.step) << " " << vocab::name(b.outcome) << " " << b.message);
      CHECK(b.step == vocab::Step::done);
      CHECK(b.outcome == vocab::Outcome::committed);
    }
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) CHECK(rack.release(n).ends_with("-sim-stock"));

    INFO("fleetctl rollback --rollout returns those boards to their previous kernel");
    auto rb = process::run({{FLEETCTL, "rollback", "--rollout", id, "--inventory", (rack.dir / "inventory.yml").string(),
                             "--state", (rack.dir / "fleet.db").string(), "--known-hosts",
                             (rack.dir / "known_hosts").string()},
                            {}, {}, 600s},
                           [&](std::string_view l) {
                             out.append(l);
                             out.push_back('\n');
                           });
    REQUIRE(rb);
    INFO(out);
    CHECK(rb->exit_code == 0);
    CHECK_THAT(out, Catch::Contains("3 rolled back"));
    for (const char* n : {"pi-1", "pi-2", "pi-3"}) CHECK(rack.release(n).ends_with("-fleet-qemu"));
  }
}
