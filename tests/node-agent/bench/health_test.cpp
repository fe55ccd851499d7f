#include <catch2/catch.hpp>

#include "node-agent/bench/health.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet::agent::bench;

TEST_CASE("health: sysfs numbers parse, anything else is unknown") {
  CHECK(parse_millicelsius("52312\n") == Approx(52.312));
  CHECK(parse_millicelsius("-5000") == Approx(-5.0));
  CHECK_FALSE(parse_millicelsius(""));
  CHECK_FALSE(parse_millicelsius("52.3"));
  CHECK_FALSE(parse_millicelsius("9999999"));
  CHECK(parse_khz_as_mhz("2400000\n") == 2400);
  CHECK_FALSE(parse_khz_as_mhz("0"));
  CHECK_FALSE(parse_khz_as_mhz("fast"));
}

TEST_CASE("health: a Pi 5's sysfs: the hottest zone, the rpi_volt alarm, cpu0's clock") {
  fleet::test::TempDir root;
  root.write("sys/class/thermal/thermal_zone0/temp", "61250\n");
  root.write("sys/class/thermal/thermal_zone1/temp", "83400\n");
  root.write("sys/class/thermal/cooling_device0/cur_state", "4\n");
  root.write("sys/class/hwmon/hwmon0/name", "cpu_thermal\n");
  root.write("sys/class/hwmon/hwmon1/name", "rpi_volt\n");
  root.write("sys/class/hwmon/hwmon1/in0_lcrit_alarm", "1\n");
  root.write("sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq", "1500000\n");
  root.write("sys/devices/system/cpu/cpu0/cpufreq/cpuinfo_max_freq", "2400000\n");
  auto h = observe_health(root.path());
  CHECK(h.temperature_c == Approx(83.4));
  CHECK(h.undervoltage == true);
  CHECK(h.cpu_mhz == 1500);
  CHECK(h.cpu_max_mhz == 2400);

  nlohmann::json t = {{"tokens_per_s", 4.1}};
  add_health(t, h);
  CHECK(t["temperature_c"] == Approx(83.4));
  CHECK(t["undervoltage"] == true);
  auto w = health_warning(t);
  CHECK_THAT(w, Catch::Contains("under-voltage"));
  CHECK_THAT(w, Catch::Contains("83.4 C"));
}

TEST_CASE("health: a board without sensors (QEMU) reports nothing and warns of nothing") {
  fleet::test::TempDir root;
  auto h = observe_health(root.path());
  CHECK_FALSE(h.temperature_c);
  CHECK_FALSE(h.undervoltage);
  CHECK_FALSE(h.cpu_mhz);
  nlohmann::json t = nlohmann::json::object();
  add_health(t, h);
  CHECK(t.empty());
  CHECK(health_warning(t).empty());
  CHECK(health_warning({{"temperature_c", 79.9}, {"undervoltage", false}}).empty());
}

TEST_CASE("health: the worse of two readings") {
  Health before{55.0, false, 2400, 2400};
  Health after{81.0, true, 1800, 2400};
  auto w = worst(before, after);
  CHECK(w.temperature_c == Approx(81.0));
  CHECK(w.undervoltage == true);
  CHECK(w.cpu_mhz == 1800);
  auto unknown_after = worst(before, Health{});
  CHECK(unknown_after.temperature_c == Approx(55.0));
  CHECK(unknown_after.undervoltage == false);
}

TEST_CASE("health: the warning is judged on the temperature the report carries") {
  Health h{79.96, false, 2400, 2400};
  CHECK(health_warning(h).empty());  // the raw reading is below the throttle point
  auto reported = as_reported(h);
  CHECK(*reported.temperature_c == Approx(80.0));
  // What fleetctl status shows as HOT 80C also carries the warning.
  CHECK_THAT(health_warning(reported), Catch::Contains("80.0 C"));
  CHECK(health_warning(Health{79.94, false, {}, {}}).empty());
  CHECK(health_warning(as_reported(Health{79.94, false, {}, {}})).empty());
}
