#pragma once
// The QEMU command line of a virtual Pi 5 board: qemu-system-aarch64 -M virt -cpu max with
// its memory split into NUMA nodes. Pure: a spec in, argv out.
#include <filesystem>
#include <string>
#include <vector>

namespace fleet::sim {

struct QemuSpec {
  std::filesystem::path kernel;   // an arm64 Image (kernel_2712.img of a bundle)
  std::filesystem::path initrd;   // optional
  std::string append;             // kernel command line
  int cpus = 2;
  int memory_mb = 1024;
  int numa_nodes = 2;             // memory and CPUs are split evenly across them
  std::string qemu = "qemu-system-aarch64";
  std::filesystem::path root_9p;  // a folder exported as the 9p root (mount tag "root")
  int ssh_port = 0;               // > 0: user networking, 127.0.0.1:ssh_port -> the board's port 22
};

// -cpu max: the Cortex-A57 model has no 16K granule and a 16K kernel hangs on it.
// NUMA nodes use -object memory-backend-ram + -numa node,memdev=: QEMU 7.2 refuses the
// older -numa node,mem=. -nic none: no NIC ROM is needed to boot (and none is installed).
std::vector<std::string> qemu_argv(const QemuSpec& spec);

}  // namespace fleet::sim
