// Power cuts on the real file systems: the board's QEMU killed with SIGKILL at random moments
// while the agent installs into the FAT boot partition, while the trial boot verifies and
// commits, and while it rolls back; then the power comes back. Every time, the boot
// partition must still boot a kernel that its config.txt names, the board must come up on
// it, and the agent's state must say what happened. Mender's promise, tested as Mender tests
// it (kill -9 in each state), but on a FAT32 partition and an ext4 root as a Pi has them.
//
// FLEET_POWER_CUT_SEED=N repeats a run (the seed is printed); FLEET_POWER_CUTS=N changes
// how many cuts (default 21, at least 20 as the issue asks; bounded by 40 minutes).
#include <catch2/catch.hpp>
#include <cstdlib>
#include <iostream>
#include <random>

#include "sim/disk_image.hpp"
#include "sim/firmware.hpp"
#include "tests/e2e/board_rack.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

enum class Moment { install, trial_boot, rollback };
const char* moment_name(Moment m) {
  switch (m) {
    case Moment::install: return "during install";
    case Moment::trial_boot: return "during the trial boot (verify, commit)";
    case Moment::rollback: return "during rollback";
  }
  return "?";
}

// What the firmware will boot from this boot partition, read as the firmware reads it.
struct Bootable {
  std::string kernel;  // its path in bootfs
  std::string release; // uname -r that kernel will show
};

std::optional<Bootable> bootable(const sim::BoardFiles& board, const std::string& stock_release) {
  sim::BootFileReader read = [&](const std::string& p) -> std::optional<std::string> {
    auto r = sim::disk::read_fat_file(board.bootfs(), p);
    return r ? *r : std::nullopt;
  };
  auto choice = sim::choose_boot(read, false);
  if (!choice) return std::nullopt;
  Bootable b{choice->kernel, stock_release};
  if (auto slash = choice->kernel.find('/'); slash != std::string::npos) {
    // A slot the agent made holds its bundle's contract, which names the release.
    auto contract = sim::disk::read_fat_file(board.bootfs(), choice->kernel.substr(0, slash) + "/fleet-contract.json");
    if (!contract || !*contract) return std::nullopt;
    auto j = nlohmann::json::parse(**contract, nullptr, false);
    if (!j.is_object() || !j.contains("kernel_release")) return std::nullopt;
    b.release = j["kernel_release"].get<std::string>();
  }
  return b;
}

// The agent's state on the board; a board it never updated (or whose first install was cut
// before the state was saved) has none: idle on its stock kernel.
nlohmann::json agent_state_or_fresh(test::Rack& rack) {
  auto state = rack.agent_state();
  if (state.is_object()) return state;
  auto exists = rack.ssh("test -e /var/lib/fleet-agent/state.json && echo yes || echo no", 60s);
  if (exists && exists->starts_with("no")) return nlohmann::json{{"state", "idle"}};
  return nlohmann::json::object();  // unreadable: not idle
}

}  // namespace

TEST_CASE("power cuts: SIGKILL during install, the trial boot and rollback: the board always boots what config.txt names") {
  const char* seed_env = std::getenv("FLEET_POWER_CUT_SEED");
  const unsigned seed = seed_env ? static_cast<unsigned>(std::strtoul(seed_env, nullptr, 10)) : std::random_device{}();
  const char* cuts_env = std::getenv("FLEET_POWER_CUTS");
  const int cuts = cuts_env ? std::atoi(cuts_env) : 21;
  if (cuts < 1) FAIL("FLEET_POWER_CUTS must be a whole number of cuts, at least 1, not '" << cuts_env << "'");
  std::cout << "power-cut seed: " << seed << " (FLEET_POWER_CUT_SEED=" << seed << " repeats this run), " << cuts
            << " cuts" << std::endl;
  INFO("seed " << seed);
  std::mt19937 rng(seed);
  auto uniform_ms = [&](int lo, int hi) { return std::chrono::milliseconds(std::uniform_int_distribution<int>(lo, hi)(rng)); };

  test::Rack rack;
  const std::string stock = test::release_of("qemu-virt-stock");
  const std::string good = test::release_of("qemu-virt");
  rack.push("qemu-virt");
  rack.push("qemu-virt-thp-never");
  // On the board's disk before the first cut (scp's writes may still be in its page cache).
  REQUIRE(rack.ssh("sync", 60s));
  const auto deadline = std::chrono::steady_clock::now() + 40min;
  int done = 0, with_damage = 0, unclean_only = 0;
  std::map<std::string, int> outcomes;
  std::map<Moment, int> per_moment;

  for (int i = 0; i < cuts; ++i) {
    if (std::chrono::steady_clock::now() > deadline) {
      FAIL("40 minutes passed after " << done << " cuts");
    }
    auto state = agent_state_or_fresh(rack);
    // Settled: idle, or installed when the cut came after install had finished (the agent
    // then waits for `fleet-agent tryboot`, which this cycle sends).
    const bool installed = state.value("state", "") == "installed";
    REQUIRE((state.value("state", "") == "idle" || installed));
    const bool has_previous = state.contains("previous") && state["previous"].is_object();
    Moment moment = static_cast<Moment>(i % 3);
    if (moment == Moment::rollback && !has_previous) moment = Moment::trial_boot;
    if (installed) moment = Moment::trial_boot;
    // Alternate a good kernel and one that fails its contract (its rollback writes too).
    const std::string committed = state.contains("committed") ? state["committed"].value("release", "") : "";
    const std::string bundle = committed == good ? "qemu-virt-thp-never" : "qemu-virt";
    INFO("cut " << i + 1 << " " << moment_name(moment) << ", bundle " << bundle);

    const int boots = rack.status().boots;
    std::thread op;
    std::chrono::milliseconds delay{0};
    switch (moment) {
      case Moment::install:
        op = std::thread([&rack, bundle] {
          // Its result is not the point: the power goes while it runs.
          auto r = rack.ssh("fleet-agent install --bundle /var/tmp/" + bundle + " --rollout r-" + bundle, 120s);
          if (r) std::cout << "  install finished before the cut" << std::endl;
        });
        delay = uniform_ms(100, 2000);  // installing qemu-virt takes 2-3 s on a board under TCG
        break;
      case Moment::trial_boot:
        op = std::thread([&rack, bundle, installed] {
          // The connection drops when the board reboots into the trial: its status says nothing.
          auto r = rack.ssh(installed ? std::string("fleet-agent tryboot")
                                      : "fleet-agent install --bundle /var/tmp/" + bundle + " --rollout r-" + bundle +
                                            " && fleet-agent tryboot",
                            180s);
          if (!r && r.error().message.find("install") != std::string::npos) std::cout << "  " << r.error().message << std::endl;
        });
        // Cut somewhere in the trial boot: from the firmware reading tryboot.txt to the
        // agent's commit or rollback and the reboot that may follow.
        for (int w = 0; w < 600 && rack.status().boots == boots; ++w) std::this_thread::sleep_for(250ms);
        delay = uniform_ms(0, 25000);
        break;
      case Moment::rollback:
        op = std::thread([&rack] {
          auto r = rack.ssh("fleet-agent rollback", 60s);
          if (r) std::cout << "  rollback returned before the cut" << std::endl;
        });
        delay = uniform_ms(50, 1500);  // rollback's writes take under a second, then it reboots
        break;
    }
    std::this_thread::sleep_for(delay);
    const bool cut = rack.power_cut();
    op.join();
    if (!cut) {
      // The board was between boots for 30 s: nothing to cut (it still counts: try again).
      rack.power_on();
      --i;
      continue;
    }
    ++done;
    ++per_moment[moment];

    // Power off: what a Pi's firmware would find.
    auto fsck = sim::disk::fsck_fat(rack.board.bootfs());
    REQUIRE(fsck);
    if (!fsck->damage.empty()) ++with_damage;
    else if (!fsck->clean) ++unclean_only;
    std::cout << "cut " << i + 1 << " " << moment_name(moment) << " after " << delay.count() << " ms: fsck.vfat -n "
              << (fsck->clean ? "clean" : fsck->damage.empty() ? "dirty bit only" : "DAMAGE") << std::endl;
    INFO("fsck.vfat -n:\n" << fsck->output);
    auto will_boot = bootable(rack.board, stock);
    REQUIRE(will_boot);  // config.txt is there and names a kernel that is there: not bricked

    // Power on: the board boots it, systemd-fsck repairs bootfs, the agent carries on.
    rack.power_on();
    auto until = std::chrono::steady_clock::now() + 300s;
    nlohmann::json settled;
    while (std::chrono::steady_clock::now() < until) {
      auto s = rack.status();
      if (s.state == "ready") {
        settled = agent_state_or_fresh(rack);
        if (settled.value("state", "") == "idle" || settled.value("state", "") == "installed") break;
      }
      std::this_thread::sleep_for(1s);
    }
    INFO("agent state: " << settled.dump() << "\nconsole:\n" << rack.console_tail());
    REQUIRE(settled.is_object());
    REQUIRE((settled.value("state", "") == "idle" || settled.value("state", "") == "installed"));
    // Where it settled is what config.txt names now, and the board runs it.
    auto now_boots = bootable(rack.board, stock);
    REQUIRE(now_boots);
    CHECK(rack.uname() == now_boots->release);
    const std::string committed_now =
        settled.contains("committed") ? settled["committed"].value("release", stock) : stock;
    CHECK(committed_now == now_boots->release);
    if (settled.contains("last")) outcomes[settled["last"].value("phase", "?")]++;
  }
  std::cout << "power cuts: " << done << " done; bootfs after the cut: " << with_damage << " with damage, " << unclean_only
            << " with the dirty bit only, the rest clean; outcomes:";
  for (const auto& [k, v] : outcomes) std::cout << " " << k << " " << v;
  std::cout << std::endl;
  // Every kind of moment was cut (rollback needs a previous kernel, so it comes third).
  if (cuts >= 3) {
    for (Moment m : {Moment::install, Moment::trial_boot, Moment::rollback}) {
      INFO(moment_name(m));
      CHECK(per_moment[m] > 0);
    }
  }
}
