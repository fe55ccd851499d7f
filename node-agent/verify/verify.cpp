#include "node-agent/verify/verify.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/kconfig.hpp"

namespace fleet::agent {
namespace {

std::string trimmed(std::string s) {
  while (!s.empty() && (s.back() == '\n' || s.back() == ' ' || s.back() == '\t')) s.pop_back();
  return s;
}

Check check_release(const Contract& c, const Observations& o) {
  Check k{"kernel_release", *c.kernel_release, "", false, ""};
  if (!o.osrelease) {
    k.actual = "(unreadable)";
    k.detail = "cannot read /proc/sys/kernel/osrelease";
    return k;
  }
  k.actual = trimmed(*o.osrelease);
  k.pass = k.actual == k.expected;
  if (!k.pass) {
    // The Pi 5 firmware falls back silently to the unprefixed kernel when the slot's is
    // missing, so a wrong release is the one sign that the new kernel never ran.
    k.detail = "a different kernel is running (a missing slot kernel makes the firmware fall back silently)";
  }
  return k;
}

Check check_page_size(const Contract& c, const Observations& o) {
  Check k{"page_size", std::to_string(*c.page_size), "", false, ""};
  std::optional<long> smaps;
  std::string smaps_error;
  if (o.smaps) {
    auto r = parse_smaps_page_size(*o.smaps);
    if (r) smaps = *r;
    else smaps_error = r.error().message;
  } else {
    smaps_error = "no /proc/self/smaps";
  }
  if (o.page_size_sysconf && smaps && *o.page_size_sysconf != *smaps) {
    k.actual = std::to_string(*o.page_size_sysconf);
    k.detail = "sysconf(_SC_PAGESIZE) says " + std::to_string(*o.page_size_sysconf) +
               " but /proc/self/smaps KernelPageSize says " + std::to_string(*smaps);
    return k;
  }
  std::optional<long> actual = o.page_size_sysconf ? o.page_size_sysconf : smaps;
  if (!actual) {
    k.actual = "(unknown)";
    k.detail = smaps_error;
    return k;
  }
  k.actual = std::to_string(*actual);
  k.pass = *actual == *c.page_size;
  k.detail = o.page_size_sysconf ? (smaps ? "sysconf, matches smaps" : "sysconf; smaps: " + smaps_error)
                                 : "smaps KernelPageSize";
  if (!k.pass) k.detail += "; the kernel was built with another page size (CONFIG_ARM64_*K_PAGES)";
  return k;
}

Check check_thp(const Contract& c, const Observations& o) {
  Check k{"thp", *c.thp, "", false, ""};
  if (!o.thp_enabled) {
    k.actual = "(not built)";
    k.detail = "no /sys/kernel/mm/transparent_hugepage/enabled: kernel built without CONFIG_TRANSPARENT_HUGEPAGE";
    return k;
  }
  auto mode = parse_thp_mode(*o.thp_enabled);
  if (!mode) {
    k.actual = "(unreadable)";
    k.detail = mode.error().message;
    return k;
  }
  k.actual = *mode;
  k.pass = k.actual == k.expected;
  if (!k.pass) {
    k.detail = "THP mode is " + k.actual + ", the contract wants " + k.expected +
               " (check transparent_hugepage= on the kernel command line)";
  }
  return k;
}

Check check_numa(const Contract& c, const Observations& o) {
  Check k{"numa_nodes", c.numa_nodes ? std::to_string(*c.numa_nodes) : ">= " + std::to_string(*c.numa_nodes_min),
          "", false, ""};
  int nodes = 1;
  if (o.nodes_online) {
    auto r = count_node_list(*o.nodes_online);
    if (!r) {
      k.actual = "(unreadable)";
      k.detail = r.error().message;
      return k;
    }
    nodes = *r;
    k.detail = "online: " + trimmed(*o.nodes_online);
  } else {
    k.detail = "no /sys/devices/system/node/online: kernel without NUMA, one node";
  }
  k.actual = std::to_string(nodes);
  k.pass = c.numa_nodes ? nodes == *c.numa_nodes : nodes >= *c.numa_nodes_min;
  if (!k.pass) k.detail += " (on a Pi 5 the bootloader adds numa=fake=N; is CONFIG_NUMA_EMU built?)";
  return k;
}

// NUMA as a Pi 5 gets it: the bootloader adds numa=fake=N and a NUMA_EMU kernel makes N nodes.
// No numa=fake (a bootloader older than 2024-12-07) leaves one node: tuning lost, nothing
// broken, so the check passes with a warning that says what to update.
Check check_numa_emulation(const Observations& o) {
  Check k{"numa_nodes", "", "", false, ""};
  int nodes = 1;
  if (o.nodes_online) {
    auto r = count_node_list(*o.nodes_online);
    if (!r) {
      k.expected = "numa=fake=N";
      k.actual = "(unreadable)";
      k.detail = r.error().message;
      return k;
    }
    nodes = *r;
  }
  k.actual = std::to_string(nodes);
  auto asked = o.cmdline ? bootloader::fake_numa_of(*o.cmdline) : std::nullopt;
  if (asked) {
    k.expected = std::to_string(*asked) + " (numa=fake=" + std::to_string(*asked) + ")";
    k.pass = nodes == *asked;
    k.detail = k.pass ? "online: " + (o.nodes_online ? trimmed(*o.nodes_online) : std::string("0")) + ", from numa=fake"
                      : "the command line asks for " + std::to_string(*asked) + " nodes but the kernel made " +
                            std::to_string(nodes) + " (is CONFIG_NUMA_EMU built?)";
    return k;
  }
  k.expected = "1 (no numa=fake on the command line)";
  k.pass = nodes == 1;
  k.detail = "no numa=fake=N on /proc/cmdline";
  if (!k.pass) {
    k.detail += ", yet " + std::to_string(nodes) + " nodes: NUMA from the firmware's tables, not emulation";
    return k;
  }
  std::string why = o.bootloader ? bootloader::numa_problem(*o.bootloader) : "";
  k.warning = (why.empty() ? std::string("the bootloader added no numa=fake") : why) +
              ": NUMA emulation is off; update the EEPROM (rpi-eeprom-update -a) to get it";
  return k;
}

// The bootloader's version, for the report; an old one is a warning, never a failure.
Check check_bootloader(const Observations& o) {
  Check k{"bootloader", std::string(">= ") + bootloader::k_numa.date, "", true, ""};
  if (!o.bootloader_error.empty()) {
    k.actual = "(unreadable)";
    k.detail = o.bootloader_error;
    k.warning = "the device tree's chosen/bootloader node cannot be read";
    return k;
  }
  k.actual = bootloader::describe(*o.bootloader);
  k.detail = "/proc/device-tree/chosen/bootloader";
  if (o.bootloader->tryboot) k.detail += *o.bootloader->tryboot ? ", this boot was a tryboot" : ", a normal boot";
  if (auto why = bootloader::numa_problem(*o.bootloader); !why.empty()) k.warning = why;
  return k;
}

// HZ and the tick mode both come from the kernel's own config (/proc/config.gz), never
// from getconf CLK_TCK: USER_HZ is 100 whatever CONFIG_HZ is.
std::optional<std::map<std::string, std::string>> config_map(const Observations& o) {
  if (!o.kernel_config) return std::nullopt;
  return kconfig::to_map(kconfig::parse(*o.kernel_config));
}

Check check_hz(const Contract& c, const std::optional<std::map<std::string, std::string>>& cfg,
               const Observations& o) {
  Check k{"hz", std::to_string(*c.hz), "", false, ""};
  if (!cfg) {
    k.actual = "(unknown)";
    k.detail = o.kernel_config_error;
    return k;
  }
  auto hz = config_hz(*cfg);
  if (!hz) {
    k.actual = "(unknown)";
    k.detail = hz.error().message;
    return k;
  }
  k.actual = std::to_string(*hz);
  k.pass = *hz == *c.hz;
  k.detail = "CONFIG_HZ in /proc/config.gz";
  return k;
}

Check check_tick(const Contract& c, const std::optional<std::map<std::string, std::string>>& cfg,
                 const Observations& o) {
  Check k{"tick", *c.tick, "", false, ""};
  if (!cfg) {
    k.actual = "(unknown)";
    k.detail = o.kernel_config_error;
    return k;
  }
  auto mode = config_tick_mode(*cfg);
  if (!mode) {
    k.actual = "(unknown)";
    k.detail = mode.error().message;
    return k;
  }
  k.actual = *mode;
  k.pass = k.actual == k.expected;
  k.detail = "CONFIG_" + k.actual + " in /proc/config.gz";
  return k;
}

Check check_headless(const Contract& c, const Observations& o) {
  Check k{"headless", *c.headless ? "yes" : "no", "", false, ""};
  bool headless = !o.drm_present && !o.asound_present;
  k.actual = headless ? "yes" : "no";
  k.pass = headless == *c.headless;
  if (o.drm_present) k.detail += "/sys/class/drm exists (DRM built in or loaded); ";
  if (o.asound_present) k.detail += "/proc/asound exists (sound built in or loaded); ";
  if (headless) k.detail = "no /sys/class/drm, no /proc/asound";
  else k.detail.resize(k.detail.size() - 2);
  return k;
}

}  // namespace

bool Report::ok() const {
  return std::all_of(checks.begin(), checks.end(), [](const Check& c) { return c.pass; });
}

Report evaluate(const Contract& c, const Observations& o) {
  Report r;
  auto cfg = config_map(o);
  if (c.kernel_release) r.checks.push_back(check_release(c, o));
  if (c.page_size) r.checks.push_back(check_page_size(c, o));
  if (c.thp) r.checks.push_back(check_thp(c, o));
  if (c.numa_nodes || c.numa_nodes_min) r.checks.push_back(check_numa(c, o));
  if (c.numa_emulation.value_or(false)) r.checks.push_back(check_numa_emulation(o));
  if (c.hz) r.checks.push_back(check_hz(c, cfg, o));
  if (c.tick) r.checks.push_back(check_tick(c, cfg, o));
  if (c.headless) r.checks.push_back(check_headless(c, o));
  if (o.bootloader || !o.bootloader_error.empty()) r.checks.push_back(check_bootloader(o));
  if (o.meminfo) {
    auto m = parse_meminfo(*o.meminfo);
    if (m) r.memory = *m;
    else r.memory_error = m.error().message;
  } else {
    r.memory_error = "no /proc/meminfo";
  }
  return r;
}

std::string report_table(const Report& r) {
  size_t w_prop = 8, w_exp = 8, w_act = 6;
  for (const auto& c : r.checks) {
    w_prop = std::max(w_prop, c.property.size());
    w_exp = std::max(w_exp, c.expected.size());
    w_act = std::max(w_act, c.actual.size());
  }
  auto pad = [](const std::string& s, size_t w) { return s + std::string(w > s.size() ? w - s.size() : 0, ' '); };
  std::string out = pad("PROPERTY", w_prop) + "  " + pad("EXPECTED", w_exp) + "  " + pad("ACTUAL", w_act) +
                    "  RESULT  DETAIL\n";
  for (const auto& c : r.checks) {
    out += pad(c.property, w_prop) + "  " + pad(c.expected, w_exp) + "  " + pad(c.actual, w_act) + "  " +
           (!c.pass ? "FAIL  " : c.warning.empty() ? "pass  " : "WARN  ") + "  " + c.detail +
           (c.warning.empty() ? "" : "; " + c.warning) + "\n";
  }
  if (r.memory) {
    out += "memory: MemTotal " + std::to_string(r.memory->mem_total_kb / 1024) + " MiB, MemAvailable " +
           std::to_string(r.memory->mem_available_kb / 1024) + " MiB\n";
  } else {
    out += "memory: " + r.memory_error + "\n";
  }
  size_t failed = static_cast<size_t>(std::count_if(r.checks.begin(), r.checks.end(), [](auto& c) { return !c.pass; }));
  out += r.ok() ? "verified: all " + std::to_string(r.checks.size()) + " properties pass\n"
                : "NOT verified: " + std::to_string(failed) + " of " + std::to_string(r.checks.size()) +
                      " properties fail\n";
  return out;
}

}  // namespace fleet::agent
