#pragma once
// The Raspberry Pi 5 firmware's choice of what to boot, as its documentation describes it
// (raspberrypi/documentation config.txt: boot, conditional filters; shared/reference/pi5.md):
//   - the tryboot flag, when set, makes it read tryboot.txt instead of config.txt, once;
//   - os_prefix=DIR/ prefixes the kernel, cmdline.txt, dtbs and overlays, and falls back
//     silently to the unprefixed files when the kernel is missing under the prefix;
//   - kernel= names the image (default kernel_2712.img), cmdline= the file holding the
//     command line (default cmdline.txt);
//   - [all] and [pi5] sections apply, [tryboot] only on a tryboot, other filters do not.
// Pure: the boot partition's files in, the chosen kernel and command line out.
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/bootloader.hpp"
#include "common/error.hpp"

namespace fleet::sim {

// Reads a file of the boot partition by its path relative to the partition; nullopt if absent.
using BootFileReader = std::function<std::optional<std::string>(const std::string& path)>;

struct BootChoice {
  std::string config_file;   // config.txt or tryboot.txt
  std::string os_prefix;     // as written in the config ("" if none)
  bool fell_back = false;    // os_prefix was set but its kernel is missing: unprefixed files used
  std::string kernel;        // path in the partition of the image that boots
  std::string cmdline;       // the kernel command line (one line, trimmed)
};

// Err when nothing can boot: no config file, or no kernel at all (the board stays dark).
Result<BootChoice> choose_boot(const BootFileReader& read, bool tryboot_flag);

// The command line the kernel gets, in the order of a real Pi 5's /proc/cmdline: the device
// tree's bootargs, the bootloader's words, two spaces, cmdline.txt. Pure.
std::string kernel_cmdline(const std::string& cmdline_txt, const std::vector<std::string>& bootloader_words);

// Bootloader releases a virtual board can carry (`fleet-sim board create --bootloader DATE`):
// real build timestamps and hashes where a board's values were published, else the date's
// midnight and no hash.
struct Release {
  const char* date;
  std::int64_t build_timestamp;
  const char* version;
  const char* seen_in;
};
inline constexpr Release k_releases[] = {
    // chosen/bootloader of a Pi 5 in rpi-eeprom #575: the release that fixed tryboot's partition.
    {"2024-05-13", 1715613301, "83b5e5e61a70a93caee65cbd6aea77bdd485e5b0", "rpi-eeprom #575"},
    // vcgencmd bootloader_version of a Pi 5: numa=fake and system_heap.max_order=0, no iommu policy.
    {"2025-03-10", 1741626637, "2bb2ae640058a2f3aa8dcbdc2da33302e509668d", "vcgencmd bootloader_version"},
};
// What a virtual board has unless told otherwise: a release that adds numa=fake.
inline constexpr const char* k_default_release = "2025-03-10";
// The capabilities a Pi 5 bootloader reports (0x7f: up to NVMe boot, tryboot among them).
inline constexpr std::uint32_t k_pi5_capabilities = 0x7f;

// The bootloader of a board built on `date` ("2024-05-13"): a known release, or that day's
// midnight UTC. Errors name the date.
Result<bootloader::Info> bootloader_release(std::string_view date);

// The board's Ethernet address: Raspberry Pi's OUI 2c:cf:67 and three bytes from its name.
std::string board_macaddr(std::string_view board_name);

}  // namespace fleet::sim
