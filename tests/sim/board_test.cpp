// Why a boot of a virtual board ended: the runner's table, row by row.
#include <catch2/catch.hpp>

#include "sim/board.hpp"
#include "sim/disk_image.hpp"

using namespace fleet::sim;

TEST_CASE("boot end: each signal alone, and what the board does next") {
  struct Row {
    BootSignals seen;
    BootEnd end;
    bool again;
    const char* name;
  };
  BootSignals none;
  auto with = [](bool BootSignals::*f) {
    BootSignals s;
    s.*f = true;
    return s;
  };
  const Row rows[] = {
      {none, BootEnd::reset_early, true, "reset-early"},
      {with(&BootSignals::alive), BootEnd::reboot, true, "reboot"},
      {with(&BootSignals::restart), BootEnd::reboot, true, "reboot"},
      {with(&BootSignals::tryboot), BootEnd::tryboot_reboot, true, "tryboot-reboot"},
      {with(&BootSignals::power_down), BootEnd::powered_off, false, "powered-off"},
      {with(&BootSignals::silent_timeout), BootEnd::silent, true, "silent"},
      {with(&BootSignals::watchdog_fired), BootEnd::watchdog_reset, true, "watchdog-reset"},
      {with(&BootSignals::killed), BootEnd::power_lost, false, "power-lost"},
      {with(&BootSignals::stop_requested), BootEnd::stopped, false, "stopped"},
  };
  for (const auto& r : rows) {
    INFO(r.name);
    CHECK(classify_boot_end(r.seen) == r.end);
    CHECK(boots_again(r.end) == r.again);
    CHECK(std::string(boot_end_name(r.end)) == r.name);
  }
}

TEST_CASE("boot end: what wins when a boot showed several signs") {
  BootSignals s;
  s.alive = true;
  s.restart = true;
  s.tryboot = true;
  CHECK(classify_boot_end(s) == BootEnd::tryboot_reboot);
  // A board that began its reboot and hung in it is reset by its watchdog.
  s.watchdog_fired = true;
  CHECK(classify_boot_end(s) == BootEnd::watchdog_reset);
  // Pulling the plug ends it whatever the console said; stopping the board too.
  s.killed = true;
  CHECK(classify_boot_end(s) == BootEnd::power_lost);
  s.stop_requested = true;
  CHECK(classify_boot_end(s) == BootEnd::stopped);
  // A power-down line is final unless the emulator had to power-cycle first.
  BootSignals off;
  off.alive = true;
  off.restart = true;
  off.power_down = true;
  CHECK(classify_boot_end(off) == BootEnd::powered_off);
}

TEST_CASE("fsck.fat's output: an unclean unmount is not damage, lost or cross-linked clusters are") {
  const std::string unclean =
      "fsck.fat 4.2 (2021-01-31)\n"
      "There are differences between boot sector and its backup.\n"
      "This is mostly harmless. Differences: (offset:original/backup)\n"
      "  65:01/00\n"
      "  Not automatically fixing this.\n"
      "Dirty bit is set. Fs was not properly unmounted and some data may be corrupt.\n"
      " Automatically removing dirty bit.\n"
      "Free cluster summary wrong (130800 vs. really 130790)\n"
      "  Auto-correcting.\n"
      "\n"
      "Leaving filesystem unchanged.\n"
      "bootfs.img: 14 files, 20/130811 clusters\n";
  CHECK(fleet::sim::disk::fsck_damage(unclean).empty());
  const std::string damaged =
      "fsck.fat 4.2 (2021-01-31)\n"
      "/fleet-0123456789ab/kernel_2712.img and\n"
      "  /.config.txt.tmp-Ab12Cd\n"
      "  share clusters.\n"
      "Reclaimed 3 unused clusters (12288 bytes) in 1 chain.\n"
      "bootfs.img: 14 files, 20/130811 clusters\n";
  auto d = fleet::sim::disk::fsck_damage(damaged);
  REQUIRE(d.size() == 4);
  CHECK(d[0] == "/fleet-0123456789ab/kernel_2712.img and");
  CHECK(d[3] == "Reclaimed 3 unused clusters (12288 bytes) in 1 chain.");
}
