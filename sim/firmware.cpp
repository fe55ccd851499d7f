#include "sim/firmware.hpp"

#include <cctype>

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

}  // namespace fleet::sim
