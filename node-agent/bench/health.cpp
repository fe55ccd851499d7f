#include "node-agent/bench/health.hpp"

#include <algorithm>
#include <cmath>
#include <charconv>
#include <cstdio>
#include <vector>

#include "common/fs.hpp"

namespace fleet::agent::bench {

namespace {

std::optional<long long> parse_whole(std::string_view text) {
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ' || text.back() == '\r')) text.remove_suffix(1);
  while (!text.empty() && text.front() == ' ') text.remove_prefix(1);
  long long v = 0;
  auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), v);
  if (text.empty() || ec != std::errc() || end != text.data() + text.size()) return std::nullopt;
  return v;
}

std::optional<std::string> read(const std::filesystem::path& p) {
  auto r = fs::read_file(p);
  if (!r) return std::nullopt;
  return *r;
}

}  // namespace

std::optional<double> parse_millicelsius(std::string_view text) {
  auto v = parse_whole(text);
  if (!v || *v < -100000 || *v > 200000) return std::nullopt;
  return double(*v) / 1000.0;
}

std::optional<int> parse_khz_as_mhz(std::string_view text) {
  auto v = parse_whole(text);
  if (!v || *v <= 0 || *v > 100'000'000) return std::nullopt;
  return int(*v / 1000);
}

Health observe_health(const std::filesystem::path& root) {
  Health h;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(root / "sys/class/thermal", ec)) {
    if (!e.path().filename().string().starts_with("thermal_zone")) continue;
    if (auto t = read(e.path() / "temp"); t) {
      if (auto c = parse_millicelsius(*t); c && (!h.temperature_c || *c > *h.temperature_c)) h.temperature_c = c;
    }
  }
  for (const auto& e : std::filesystem::directory_iterator(root / "sys/class/hwmon", ec)) {
    auto name = read(e.path() / "name").value_or("");
    if (name.starts_with("rpi_volt")) {
      if (auto v = parse_whole(read(e.path() / "in0_lcrit_alarm").value_or(""))) h.undervoltage = *v != 0;
    }
  }
  const auto cpufreq = root / "sys/devices/system/cpu/cpu0/cpufreq";
  h.cpu_mhz = parse_khz_as_mhz(read(cpufreq / "scaling_cur_freq").value_or(""));
  h.cpu_max_mhz = parse_khz_as_mhz(read(cpufreq / "cpuinfo_max_freq").value_or(""));
  return h;
}

Health worst(const Health& a, const Health& b) {
  Health w = a;
  if (b.temperature_c && (!w.temperature_c || *b.temperature_c > *w.temperature_c)) w.temperature_c = b.temperature_c;
  if (b.undervoltage) w.undervoltage = w.undervoltage.value_or(false) || *b.undervoltage;
  if (b.cpu_mhz && (!w.cpu_mhz || *b.cpu_mhz < *w.cpu_mhz)) w.cpu_mhz = b.cpu_mhz;
  if (b.cpu_max_mhz) w.cpu_max_mhz = b.cpu_max_mhz;
  return w;
}

Health as_reported(const Health& h) {
  Health r = h;
  if (r.temperature_c) r.temperature_c = std::round(*r.temperature_c * 10) / 10;
  return r;
}

void add_health(nlohmann::json& t, const Health& raw) {
  const Health h = as_reported(raw);
  if (h.temperature_c) t["temperature_c"] = *h.temperature_c;
  if (h.undervoltage) t["undervoltage"] = *h.undervoltage;
  if (h.cpu_mhz) t["cpu_mhz"] = *h.cpu_mhz;
  if (h.cpu_max_mhz) t["cpu_max_mhz"] = *h.cpu_max_mhz;
}

std::string health_warning(const nlohmann::json& t) {
  Health h;
  if (t.contains("undervoltage") && t["undervoltage"].is_boolean()) h.undervoltage = t["undervoltage"].get<bool>();
  if (t.contains("temperature_c") && t["temperature_c"].is_number()) h.temperature_c = t["temperature_c"].get<double>();
  return health_warning(h);
}

std::string health_warning(const Health& h) {
  std::vector<std::string> why;
  if (h.undervoltage.value_or(false)) {
    why.push_back("the board reported under-voltage while it was measured (a Pi 5 wants a 5 V 5 A supply)");
  }
  if (h.temperature_c && *h.temperature_c >= k_throttle_celsius) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "the SoC reached %.1f C, where the firmware throttles the Arm cores (cooling)",
                  *h.temperature_c);
    why.push_back(buf);
  }
  std::string out;
  for (const auto& w : why) out += (out.empty() ? "" : "; ") + w;
  return out;
}

}  // namespace fleet::agent::bench
