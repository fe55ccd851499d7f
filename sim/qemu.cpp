#include "sim/qemu.hpp"

namespace fleet::sim {

std::vector<std::string> qemu_argv(const QemuSpec& s) {
  std::vector<std::string> a = {s.qemu, "-M", "virt", "-cpu", "max", "-smp", std::to_string(s.cpus),
                                "-m", std::to_string(s.memory_mb) + "M", "-nographic", "-no-reboot", "-nic", "none",
                                "-kernel", s.kernel.string()};
  if (!s.initrd.empty()) a.insert(a.end(), {"-initrd", s.initrd.string()});
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
