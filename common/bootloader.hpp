#pragma once
// The Raspberry Pi 5 bootloader (the EEPROM) as the kernel sees it, and the releases of it that
// fleetctl depends on. Shared by the agent, which reads /proc/device-tree/chosen/bootloader/
// and refuses what an old bootloader cannot do, and by fleet-sim, whose firmware emulator
// writes that node and adds the command-line words a real bootloader adds. Pure.
#include <cstdint>
#include <map>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::bootloader {

// Releases that change what fleetctl can rely on (rpi-eeprom firmware-2712/release-notes.md;
// the dates are the releases', the times their midnight UTC).
struct Milestone {
  std::int64_t unix_time;
  const char* date;
  const char* what;
  const char* source;
};
// tryboot with os_prefix needs nothing newer than the first Pi 5 bootloaders, but before this
// release the device tree misreported the partition tryboot booted from, and boards with older
// EEPROMs were seen failing tryboot (meta-rauc-community #181, Home Assistant OS's RAUC backend).
// fleet-agent install refuses older bootloaders: a trial boot it cannot trust is no trial.
inline constexpr Milestone k_tryboot{1715558400, "2024-05-13", "tryboot reported correctly in the device tree",
                                     "rpi-eeprom #575, release notes 2024-05-13"};
// The bootloader adds system_heap.max_order=0 when it adds numa=fake (rpi-eeprom #625).
inline constexpr Milestone k_heap_order{1730764800, "2024-11-05", "system_heap.max_order=0 with NUMA",
                                        "rpi-eeprom #625, release notes 2024-11-05"};
// SDRAM_BANKLOW on by default, so every board gets numa=fake=N (NUMA emulation) without a
// setting. Older bootloaders boot a NUMA_EMU kernel with one node: the tuning is lost, nothing
// breaks, so verification warns instead of failing.
inline constexpr Milestone k_numa{1733529600, "2024-12-07", "numa=fake=N by default (SDRAM_BANKLOW)",
                                  "rpi-eeprom release notes 2024-12-07, raspberrypi/linux #6443"};
// iommu_dma_numa_policy=interleave added with NUMA (rpi-eeprom #767, raspberrypi/linux #6687).
inline constexpr Milestone k_iommu_policy{1762300800, "2025-11-05", "iommu_dma_numa_policy=interleave with NUMA",
                                          "rpi-eeprom #767, release notes 2025-11-05"};

// capabilities bit 3: the bootloader implements the tryboot flag (raspberrypi/documentation,
// device tree chosen/bootloader).
inline constexpr std::uint32_t k_capability_tryboot = 1u << 3;

// /proc/device-tree/chosen/bootloader/: every property a big-endian u32 but `version`, a
// NUL-terminated git hash.
struct Info {
  std::optional<std::int64_t> build_timestamp;  // Unix time of the build: the version that matters
  std::string version;                          // git hash ("" if absent)
  std::optional<std::uint32_t> capabilities;
  std::optional<bool> tryboot;                  // this boot was a tryboot
  std::optional<std::uint32_t> partition;
  std::optional<std::uint32_t> boot_mode;
};

// Parses the node's files (name -> raw bytes). An unreadable property (wrong length, a
// version that is not text) is an error naming it; unknown ones are ignored.
Result<Info> parse_node(const std::map<std::string, std::string>& properties);

// "2024-12-07" for a Unix time (UTC).
std::string date_of(std::int64_t unix_time);
// "2024-12-07 (83b5e5e6)": the date, and the hash's first 8 digits when known.
std::string describe(const Info& info);

// Why this bootloader cannot be trusted with a tryboot, or "" when it can.
std::string tryboot_problem(const Info& info);
// Why this bootloader adds no numa=fake, or "" when it does.
std::string numa_problem(const Info& info);

// numa=fake=N as the Pi 5 bootloader chooses N: nodes of 512 MB, at most 8 (2 GB: 4,
// 4/8/16 GB: 8; raspberrypi/linux #6971, #6821, #7069, #6621). 1 GB gives 2 by the same rule
// (not confirmed on a board).
int fake_numa_nodes(int memory_mb);

// The words the bootloader adds to the kernel command line, in its order, for a board with
// `memory_mb` of RAM and this Ethernet address ("2c:cf:67:..."): numa=fake=N and what comes
// with it (by release), then smsc95xx.macaddr and the vc_mem window (a Pi 5 /proc/cmdline,
// raspberrypi/linux #6980).
std::vector<std::string> cmdline_words(const Info& info, int memory_mb, std::string_view macaddr);

// The bootargs of the Pi 5 device tree (arch/arm64/boot/dts/broadcom/bcm2712-rpi.dtsi of
// rpi-6.12.49), which the firmware puts before its own words: numa_policy=interleave is the
// one that matters here.
inline constexpr const char* k_pi5_dtb_bootargs =
    "reboot=w coherent_pool=1M 8250.nr_uarts=1 pci=pcie_bus_safe cgroup_disable=memory numa_policy=interleave "
    "nvme.max_host_mem_size_mb=0";

// The value of `numa=fake=N` on a command line, if any (nullopt when absent or not a count).
std::optional<int> fake_numa_of(std::string_view cmdline);

}  // namespace fleet::bootloader
