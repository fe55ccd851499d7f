// The agent's whole update flow on a virtual Pi 5 board: real QEMU, the firmware emulator
// choosing kernels, the tryboot flag learnt from the console, sshd on the board, gRPC
// reports to a real server in this test.
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
#include "sim/firmware.hpp"
#include "tests/e2e/board_rack.hpp"
#include "tests/support/sshd.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {
using test::Rack;
using test::release_of;
}  // namespace

TEST_CASE("virtual board: a good update commits and stays, a kernel failing its contract or panicking falls back") {
  Rack rack;
  const std::string stock = release_of("qemu-virt-stock");
  const std::string good = release_of("qemu-virt");
  INFO("console:\n" << rack.console_tail());
  CHECK(rack.uname() == stock);

  {
    INFO("good update");
    auto st = rack.update("qemu-virt");
    INFO("agent state: " << st.dump() << "\nconsole:\n" << rack.console_tail());
    CHECK(st["last"]["phase"] == "COMMITTED");
    CHECK(st["committed"]["release"] == good);
    CHECK(rack.uname() == good);
    CHECK(rack.status().tryboot);  // committed during the trial boot, without another reboot
    // What the emulated bootloader told the kernel: its words on the command line, and in the
    // device tree that this boot was a tryboot (chosen/bootloader/tryboot, a big-endian 1).
    auto seen = rack.ssh("cat /proc/cmdline; od -An -tx1 /proc/device-tree/chosen/bootloader/tryboot");
    REQUIRE(seen);
    CHECK_THAT(*seen, Catch::Contains(" numa=fake=2 ") && Catch::Contains("00 00 00 01"));
    CHECK(rack.phases_for("r-qemu-virt", 3) == std::vector<std::string>{"INSTALLED", "TRYBOOT", "COMMITTED"});
    int boots = rack.status().boots;
    (void)rack.ssh("reboot -f");
    rack.wait_ready(boots + 1);
    CHECK(rack.uname() == good);
    CHECK_FALSE(rack.status().tryboot);  // config.txt boots it now
  }
  {
    INFO("an update whose kernel fails its contract (THP never)");
    auto st = rack.update("qemu-virt-thp-never");
    INFO("agent state: " << st.dump() << "\nconsole:\n" << rack.console_tail());
    CHECK(st["last"]["phase"] == "ROLLED_BACK");
    CHECK_THAT(st["last"]["message"].get<std::string>(), Catch::Contains("thp expected madvise, got never"));
    CHECK(st["committed"]["release"] == good);
    CHECK(rack.uname() == good);
    CHECK(rack.phases_for("r-qemu-virt-thp-never", 4) ==
          std::vector<std::string>{"INSTALLED", "TRYBOOT", "VERIFY_FAILED", "ROLLED_BACK"});
  }
  {
    INFO("an update whose kernel panics at boot");
    auto st = rack.update("qemu-virt-panic");
    INFO("agent state: " << st.dump() << "\nconsole:\n" << rack.console_tail());
    CHECK(st["last"]["phase"] == "BOOT_FAILED");
    CHECK_THAT(st["last"]["message"].get<std::string>(), Catch::Contains("boot failed, rolled back"));
    CHECK(rack.uname() == good);
    CHECK_THAT(rack.console_tail() + fs::read_file(rack.board.console_log()).value_or(""),
               Catch::Contains("Kernel panic"));
    CHECK(rack.phases_for("r-qemu-virt-panic", 3).back() == "BOOT_FAILED");
  }
  {
    INFO("an update whose board never comes up: the watchdog power-cycles it");
    auto st = rack.update("qemu-virt-hang");
    INFO("agent state: " << st.dump() << "\nconsole:\n" << rack.console_tail());
    CHECK(st["last"]["phase"] == "BOOT_FAILED");
    CHECK(rack.uname() == good);
    CHECK_THAT(fs::read_file(rack.board.console_log()).value_or(""), Catch::Contains("no sign of life"));
    // The board's own watchdog never armed (systemd never ran): the emulator's bound reset it.
    CHECK(rack.status().silent_resets >= 1);
    CHECK(rack.status().watchdog_resets == 0);
  }
}

TEST_CASE("virtual board: its watchdog device resets a board whose PID 1 hangs, and it boots again") {
  Rack rack;
  const int boots = rack.status().boots;
  // systemd freezes when it crashes (CrashAction=freeze) and stops petting the i6300esb it
  // opened; 30 s later (RuntimeWatchdogSec) the device fires and the board is reset.
  auto sent = rack.ssh("kill -SEGV 1", 30s);
  INFO("kill -SEGV 1: " << (sent ? "sent" : sent.error().message));  // the connection may hang with the board
  rack.wait_ready(boots + 1);
  const auto s = rack.status();
  INFO("console:\n" << rack.console_tail());
  CHECK(s.watchdog_resets == 1);
  CHECK(s.silent_resets == 0);
  CHECK(s.last_end == "watchdog-reset");
  const auto console = fs::read_file(rack.board.console_log()).value_or("");
  CHECK_THAT(console, Catch::Contains("Watchdog running with a hardware timeout of 30s") &&
                          Catch::Contains("watchdog: timer fired") &&
                          Catch::Contains("the board's i6300esb was not petted in time, reset"));
  CHECK(rack.uname() == release_of("qemu-virt-stock"));
}

TEST_CASE("virtual board with an EEPROM older than 2024-05-13: install refuses, names the minimum, changes nothing") {
  test::RackSpec spec;
  spec.machine.bootloader = sim::bootloader_release("2024-04-20").value();
  Rack rack(spec);
  const auto config_before = sim::disk::read_fat_file(rack.board.bootfs(), "config.txt");
  REQUIRE(config_before);
  REQUIRE(*config_before);
  rack.push("qemu-virt");
  auto r = rack.ssh("fleet-agent install --bundle /var/tmp/qemu-virt --rollout r-qemu-virt 2>&1; echo \"exit $?\"");
  REQUIRE(r);
  INFO(*r);
  CHECK_THAT(*r, Catch::Contains("2024-04-20") && Catch::Contains("older than 2024-05-13") &&
                     Catch::Contains("rpi-eeprom-update -a") && Catch::Contains("exit 1"));
  // As the firmware will read the boot partition (the agent's writes are fsynced), and as the
  // board sees it.
  CHECK(sim::disk::read_fat_file(rack.board.bootfs(), "config.txt").value() == *config_before);
  CHECK_FALSE(sim::disk::read_fat_file(rack.board.bootfs(), "tryboot.txt").value());
  CHECK(rack.ssh("cat /boot/firmware/config.txt").value_or("") == **config_before);
  CHECK(rack.status().bootloader == "2024-04-20");
}
