#include "sim/qemu.hpp"

namespace fleet::sim {

namespace {

// QEMU's option syntax: a comma inside a value is written twice.
std::string option_value(const std::string& v) {
  std::string out;
  for (char ch : v) out += ch == ',' ? std::string(",,") : std::string(1, ch);
  return out;
}

}  // namespace

std::vector<std::string> qemu_argv(const QemuSpec& s) {
  // gic-version=2: the Pi 5's GIC-400 is a GICv2 (virt's default is v2 too; said, not assumed).
  std::string machine = "virt,gic-version=2";
  if (!s.dumpdtb.empty()) machine += ",dumpdtb=" + option_value(s.dumpdtb.string());
  std::vector<std::string> a = {s.qemu, "-M", machine, "-cpu", s.cpu, "-smp", std::to_string(s.cpus),
                                "-m", std::to_string(s.memory_mb) + "M", "-nographic", "-no-reboot",
                                "-kernel", s.kernel.string()};
  if (s.ssh_port > 0) {
    // User-mode networking: the board reaches the host's loopback as 10.0.2.2, and only
    // 127.0.0.1:ssh_port reaches the board. romfile= : no PXE ROM (none is installed).
    std::string netdev = "user,id=net0,hostfwd=tcp:127.0.0.1:" + std::to_string(s.ssh_port) + "-:22";
    if (s.model_port > 0) {
      netdev += ",hostfwd=tcp:127.0.0.1:" + std::to_string(s.model_port) + "-:" + std::to_string(k_board_model_port);
    }
    a.insert(a.end(), {"-netdev", netdev, "-device", "virtio-net-pci,netdev=net0,romfile="});
  } else {
    a.insert(a.end(), {"-nic", "none"});
  }
  for (size_t i = 0; i < s.disks.size(); ++i) {
    // cache=writeback: the guest's flushes reach the host's disk (fdatasync), and what the
    // guest has submitted is in the host's page cache, which a killed QEMU does not lose: a
    // SIGKILL loses only what the guest still held in its own page cache. A card that
    // reorders or tears writes in its own cache is not modelled.
    std::string id = "disk" + std::to_string(i);
    a.insert(a.end(), {"-drive", "if=none,id=" + id + ",format=raw,cache=writeback,file=" + option_value(s.disks[i].string()),
                       "-device", "virtio-blk-pci,drive=" + id});
  }
  if (s.watchdog) a.insert(a.end(), {"-device", "i6300esb", "-action", "watchdog=debug"});
  if (!s.initrd.empty()) a.insert(a.end(), {"-initrd", s.initrd.string()});
  if (!s.dtb.empty()) a.insert(a.end(), {"-dtb", s.dtb.string()});
  a.insert(a.end(), {"-append", s.append});
  int nodes = s.numa_nodes < 1 ? 1 : s.numa_nodes;
  if (nodes > 1) {
    int per_node = s.memory_mb / nodes;
    for (int n = 0; n < nodes; ++n) {
      int mb = n == nodes - 1 ? s.memory_mb - per_node * (nodes - 1) : per_node;
      a.insert(a.end(), {"-object", "memory-backend-ram,id=mem" + std::to_string(n) + ",size=" + std::to_string(mb) + "M"});
      std::string node = "node,nodeid=" + std::to_string(n) + ",memdev=mem" + std::to_string(n);
      // CPUs round-robin over nodes; a node without CPUs is still a memory node.
      for (int c = n; c < s.cpus; c += nodes) node += ",cpus=" + std::to_string(c);
      a.insert(a.end(), {"-numa", node});
    }
  }
  return a;
}

}  // namespace fleet::sim
