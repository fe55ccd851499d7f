#pragma once
// The QEMU command line of a virtual Pi 5 board: qemu-system-aarch64 -M virt,gic-version=2
// -cpu cortex-a76, the Pi 5's core and interrupt controller (a GIC-400), with its memory in
// one or more QEMU NUMA nodes. Pure: a spec in, argv out.
#include <filesystem>
#include <string>
#include <vector>

namespace fleet::sim {

// The port fleet-model listens on inside a board (fleetctl's default fleet_model_listen).
inline constexpr int k_board_model_port = 6881;

struct QemuSpec {
  std::filesystem::path kernel;   // an arm64 Image (kernel_2712.img of a bundle)
  std::filesystem::path initrd;   // optional
  std::string append;             // kernel command line
  int cpus = 2;
  int memory_mb = 1024;
  int numa_nodes = 2;             // memory and CPUs are split evenly across them
  std::string qemu = "qemu-system-aarch64";
  // The BCM2712's cores. QEMU's cortex-a76 has the 16K granule (Cortex-A57 has not: a 16K
  // kernel hangs on it) and no pointer authentication, which TCG emulates slowly.
  std::string cpu = "cortex-a76";
  std::filesystem::path dtb;      // a device tree to boot with (QEMU's own, plus the bootloader node)
  std::filesystem::path dumpdtb;  // set: QEMU writes its device tree here and exits
  // Raw disk images, each a virtio-blk PCI disk in this order (/dev/vda, /dev/vdb, ...).
  std::vector<std::filesystem::path> disks;
  // An i6300esb watchdog (PCI), as the Pi 5 has the BCM2712's. When it expires QEMU prints
  // "watchdog: timer fired" and carries on (-action watchdog=debug); the caller resets the
  // board, as it does for every reboot (-no-reboot).
  bool watchdog = false;
  int ssh_port = 0;               // > 0: user networking, 127.0.0.1:ssh_port -> the board's port 22
  // > 0 (with ssh_port): 127.0.0.1:model_port -> the board's k_board_model_port, where
  // fleet-model serves pieces during `fleetctl model push`. The boards reach each other the
  // same way: a board dials 10.0.2.2:model_port of another, which is the host's loopback.
  int model_port = 0;
};

// NUMA nodes use -object memory-backend-ram + -numa node,memdev=: QEMU 7.2 refuses the
// older -numa node,mem=. -nic none: no NIC ROM is needed to boot (and none is installed).
std::vector<std::string> qemu_argv(const QemuSpec& spec);

}  // namespace fleet::sim
