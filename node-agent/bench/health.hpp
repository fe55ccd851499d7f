#pragma once
// The board's condition while it was measured: a Pi 5 that is hot or short of power runs
// slower, and its tokens/s says so, not the kernel. Read from sysfs:
//  - SoC temperature: /sys/class/thermal/thermal_zone*/temp (millidegrees C; the hottest).
//    The firmware throttles the Arm cores from 80 C and holds 85 C (Raspberry Pi
//    documentation, "Frequency management and thermal control").
//  - Under-voltage: the raspberrypi-hwmon driver (hwmon name "rpi_volt") polls the
//    firmware's GET_THROTTLED every 2 s and raises in0_lcrit_alarm on under-voltage.
//  - CPU clock: /sys/devices/system/cpu/cpu0/cpufreq/scaling_cur_freq and cpuinfo_max_freq (kHz).
// Anything a board does not have (a QEMU board has no thermal zone) stays unknown.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>

#include <nlohmann/json.hpp>

namespace fleet::agent::bench {

inline constexpr double k_throttle_celsius = 80.0;

struct Health {
  std::optional<double> temperature_c;  // the hottest thermal zone
  std::optional<bool> undervoltage;
  std::optional<int> cpu_mhz;
  std::optional<int> cpu_max_mhz;
};

// The temperature as reports carry it (0.1 C): the warning is judged on the same figure. Pure.
Health as_reported(const Health& h);

// "52312\n" (millidegrees) -> 52.312; nullopt if not a number. Pure.
std::optional<double> parse_millicelsius(std::string_view text);
// "1500000\n" (kHz) -> 1500; nullopt if not a number. Pure.
std::optional<int> parse_khz_as_mhz(std::string_view text);

Health observe_health(const std::filesystem::path& root);

// The worse of two readings (the higher temperature, under-voltage if either saw it, the
// lower clock). Pure.
Health worst(const Health& a, const Health& b);

// Fields for the report's throughput: temperature_c, undervoltage, cpu_mhz, cpu_max_mhz (the
// known ones only). Pure.
void add_health(nlohmann::json& throughput, const Health& h);
// Why the board itself may have held tokens/s down, from those fields ("" if nothing).
std::string health_warning(const nlohmann::json& throughput);
std::string health_warning(const Health& h);

}  // namespace fleet::agent::bench
