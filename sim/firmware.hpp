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

}  // namespace fleet::sim
