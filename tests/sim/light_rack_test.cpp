// A rack of two light boards (fleet-sim light) under the real fleetctl: SSH to each board's
// own sshd chrooted into its folder, the host's fleet-agent pushed and run there, its tryboot
// and rollback reboots carried out by fleet-sim, reports over gRPC with TLS, SQLite state.

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "tests/support/light_rack.hpp"
#include "tests/support/sshd.hpp"

using namespace fleet;
using namespace std::chrono_literals;
using namespace fleet::test;


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
