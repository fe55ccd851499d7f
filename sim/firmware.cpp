#include "sim/firmware.hpp"

#include <cctype>
#include <cstdio>
#include <ctime>

namespace fleet::sim {
namespace {

std::string trim(std::string s) {
  while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.pop_back();
  size_t i = 0;
  while (i < s.size() && std::isspace(static_cast<unsigned char>(s[i]))) ++i;
  return s.substr(i);
}

struct Settings {
  std::string kernel = "kernel_2712.img";  // the Pi 5 default, 16K-page kernel
  std::string cmdline = "cmdline.txt";
  std::string os_prefix;
};

Settings parse_config(const std::string& text, bool tryboot_flag) {
  Settings s;
  bool active = true;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string line = trim(text.substr(pos, nl == std::string::npos ? std::string::npos : nl - pos));
    pos = nl == std::string::npos ? text.size() : nl + 1;
    if (line.empty() || line[0] == '#') continue;
    if (line.front() == '[' && line.back() == ']') {
      std::string filter = line.substr(1, line.size() - 2);
      active = filter == "all" || filter == "pi5" || (filter == "tryboot" && tryboot_flag);
      continue;
    }
    if (!active) continue;
    size_t eq = line.find('=');
    if (eq == std::string::npos) continue;
    std::string key = trim(line.substr(0, eq));
    std::string value = trim(line.substr(eq + 1));
    if (key == "kernel") s.kernel = value;
    else if (key == "cmdline") s.cmdline = value;
    else if (key == "os_prefix") s.os_prefix = value;
  }
  return s;
}

}  // namespace

Result<BootChoice> choose_boot(const BootFileReader& read, bool tryboot_flag) {
  BootChoice c;
  c.config_file = tryboot_flag ? "tryboot.txt" : "config.txt";
  auto config = read(c.config_file);
  if (!config) return fail(Errc::not_found, "firmware: no " + c.config_file + " on the boot partition");
  Settings s = parse_config(*config, tryboot_flag);
  c.os_prefix = s.os_prefix;
  std::string prefix = s.os_prefix;
  if (!prefix.empty() && !read(prefix + s.kernel)) {
    c.fell_back = true;  // silently, as the real firmware does
    prefix.clear();
  }
  c.kernel = prefix + s.kernel;
  if (!read(c.kernel)) return fail(Errc::not_found, "firmware: kernel " + c.kernel + " not found; nothing boots");
  c.cmdline = trim(read(prefix + s.cmdline).value_or(""));
  if (auto nl = c.cmdline.find('\n'); nl != std::string::npos) c.cmdline.resize(nl);
  return c;
}

std::string kernel_cmdline(const std::string& cmdline_txt, const std::vector<std::string>& bootloader_words) {
  std::string out = bootloader::k_pi5_dtb_bootargs;
  for (const auto& w : bootloader_words) out += " " + w;
  return out + "  " + cmdline_txt;
}

Result<bootloader::Info> bootloader_release(std::string_view date) {
  bootloader::Info info;
  info.capabilities = k_pi5_capabilities;
  for (const auto& r : k_releases) {
    if (date == r.date) {
      info.build_timestamp = r.build_timestamp;
      info.version = r.version;
      return info;
    }
  }
  std::tm tm{};
  const std::string text(date);
  const char* end = ::strptime(text.c_str(), "%Y-%m-%d", &tm);
  if (text.size() != 10 || end == nullptr || *end != '\0' || tm.tm_year < 120 || tm.tm_year > 200) {
    return fail(Errc::invalid_input, "bootloader date '" + text + "' is not a date YYYY-MM-DD from 2020 on");
  }
  info.build_timestamp = static_cast<std::int64_t>(::timegm(&tm));
  return info;
}

std::string board_macaddr(std::string_view name) {
  std::uint32_t h = 2166136261u;  // FNV-1a: stable across runs and machines
  for (unsigned char c : name) h = (h ^ c) * 16777619u;
  char buf[32];
  std::snprintf(buf, sizeof buf, "2c:cf:67:%02x:%02x:%02x", (h >> 16) & 0xff, (h >> 8) & 0xff, h & 0xff);
  return buf;
}

}  // namespace fleet::sim
