// Why a boot of a virtual board ended: the runner's table, row by row.
#include <catch2/catch.hpp>

#include "sim/board.hpp"

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
