#pragma once
// Verification: the running system (Observations) against a Contract. evaluate() is pure;
// observe() is the only part that touches /proc and /sys.
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bootloader.hpp"
#include "common/contract.hpp"
#include "node-agent/verify/parsers.hpp"

namespace fleet::agent {

// Raw readings, each absent when the file was absent. Text is kept unparsed so that the
// parse errors end up in the report, next to the property they concern.
struct Observations {
  std::optional<long> page_size_sysconf;        // only when checking the live system
  std::optional<std::string> smaps;             // /proc/self/smaps
  std::optional<std::string> thp_enabled;       // /sys/kernel/mm/transparent_hugepage/enabled
  std::optional<std::string> nodes_online;      // /sys/devices/system/node/online
  std::optional<std::string> kernel_config;     // /proc/config.gz, decompressed
  std::string kernel_config_error;              // why kernel_config is absent
  std::optional<std::string> osrelease;         // /proc/sys/kernel/osrelease (= uname -r)
  bool drm_present = false;                     // /sys/class/drm
  bool asound_present = false;                  // /proc/asound
  std::optional<std::string> meminfo;           // /proc/meminfo
  std::optional<std::string> cmdline;           // /proc/cmdline (numa=fake=N, from the bootloader)
  // /proc/device-tree/chosen/bootloader/, absent on a board whose firmware writes no such
  // node (not a Pi); bootloader_error when it is there but unreadable.
  std::optional<bootloader::Info> bootloader;
  std::string bootloader_error;
};

// Reads /proc/device-tree/chosen/bootloader/ under `root`: nullopt when there is no node.
Result<std::optional<bootloader::Info>> read_bootloader(const std::filesystem::path& root);

enum class Source { live, folder };

// Reads everything under `root` ("/" on a board). With Source::live the page size also
// comes from sysconf(), which only means something for the running system.
Observations observe(const std::filesystem::path& root, Source source);

struct Check {
  std::string property;
  std::string expected;
  std::string actual;
  bool pass = false;
  std::string detail;  // why it failed, or how it was read
  std::string warning{};  // passes, but a user should act (an old bootloader); "" if none
};

struct Report {
  std::vector<Check> checks;
  std::optional<Meminfo> memory;
  std::string memory_error;
  bool ok() const;
};

Report evaluate(const Contract& contract, const Observations& obs);

std::string report_table(const Report& report);

}  // namespace fleet::agent
