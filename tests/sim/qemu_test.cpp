#include <algorithm>
#include <catch2/catch.hpp>

#include "sim/qemu.hpp"

using namespace fleet::sim;

namespace {
bool has(const std::vector<std::string>& v, const std::string& s) { return std::find(v.begin(), v.end(), s) != v.end(); }
}  // namespace

TEST_CASE("qemu argv: virt with a GICv2, Cortex-A76 cores, memory split across NUMA nodes with memdev") {
  QemuSpec s;
  s.kernel = "/b/boot/kernel_2712.img";
  s.initrd = "/b/initrd";
  s.append = "console=ttyAMA0";
  s.cpus = 2;
  s.memory_mb = 1000;
  s.numa_nodes = 2;
  auto a = qemu_argv(s);
  CHECK(has(a, "virt,gic-version=2"));
  CHECK(has(a, "cortex-a76"));
  CHECK_FALSE(has(a, "max"));
  CHECK_FALSE(has(a, "-dtb"));
  CHECK(has(a, "1000M"));
  CHECK(has(a, "memory-backend-ram,id=mem0,size=500M"));
  CHECK(has(a, "memory-backend-ram,id=mem1,size=500M"));
  CHECK(has(a, "node,nodeid=0,memdev=mem0,cpus=0"));
  CHECK(has(a, "node,nodeid=1,memdev=mem1,cpus=1"));
  CHECK(has(a, "/b/initrd"));
  CHECK_FALSE(has(a, "cortex-a57"));
}

TEST_CASE("qemu argv: uneven memory goes to the last node, one node means no -numa") {
  QemuSpec s;
  s.kernel = "k";
  s.memory_mb = 1025;
  s.numa_nodes = 2;
  s.cpus = 4;
  auto a = qemu_argv(s);
  CHECK(has(a, "memory-backend-ram,id=mem1,size=513M"));
  CHECK(has(a, "node,nodeid=0,memdev=mem0,cpus=0,cpus=2"));
  s.numa_nodes = 1;
  a = qemu_argv(s);
  CHECK_FALSE(has(a, "-numa"));
  CHECK_FALSE(has(a, "-initrd"));
}

TEST_CASE("qemu argv: a board's own device tree, and QEMU asked to dump its own") {
  QemuSpec s;
  s.kernel = "k";
  s.dtb = "/b/board.dtb";
  auto a = qemu_argv(s);
  auto at = std::find(a.begin(), a.end(), "-dtb");
  REQUIRE(at != a.end());
  CHECK(*(at + 1) == "/b/board.dtb");
  s.dtb.clear();
  s.dumpdtb = "/b/qemu.dtb";
  a = qemu_argv(s);
  CHECK(has(a, "virt,gic-version=2,dumpdtb=/b/qemu.dtb"));
  CHECK_FALSE(has(a, "-dtb"));
}

TEST_CASE("qemu argv: the board disks as virtio-blk in order, written back on flush, commas doubled") {
  QemuSpec s;
  s.kernel = "k";
  s.disks = {"/b/bootfs.img", "/b/odd,name.img"};
  auto a = qemu_argv(s);
  auto first = std::find(a.begin(), a.end(), "if=none,id=disk0,format=raw,cache=writeback,file=/b/bootfs.img");
  auto second = std::find(a.begin(), a.end(), "if=none,id=disk1,format=raw,cache=writeback,file=/b/odd,,name.img");
  REQUIRE(first != a.end());
  REQUIRE(second != a.end());
  // bootfs before rootfs: the kernel names them vda, vdb in PCI order.
  CHECK(first < second);
  CHECK(*(first + 2) == "virtio-blk-pci,drive=disk0");
  CHECK_FALSE(has(a, "i6300esb"));
}

TEST_CASE("qemu argv: the watchdog device reports its expiry instead of resetting (the emulator resets)") {
  QemuSpec s;
  s.kernel = "k";
  s.watchdog = true;
  auto a = qemu_argv(s);
  CHECK(has(a, "i6300esb"));
  auto action = std::find(a.begin(), a.end(), "-action");
  REQUIRE(action != a.end());
  CHECK(*(action + 1) == "watchdog=debug");
}

TEST_CASE("qemu argv: user networking forwards SSH and, when asked, fleet-model's port from loopback") {
  QemuSpec s;
  s.kernel = "/b/Image";
  s.ssh_port = 22701;
  auto a = qemu_argv(s);
  CHECK(has(a, "user,id=net0,hostfwd=tcp:127.0.0.1:22701-:22"));
  s.model_port = 22801;
  a = qemu_argv(s);
  CHECK(has(a, "user,id=net0,hostfwd=tcp:127.0.0.1:22701-:22,hostfwd=tcp:127.0.0.1:22801-:" +
                   std::to_string(k_board_model_port)));
  s.ssh_port = 0;  // no network at all: no forward either
  a = qemu_argv(s);
  CHECK(has(a, "none"));
  CHECK(std::none_of(a.begin(), a.end(), [](const std::string& x) { return x.find("hostfwd") != std::string::npos; }));
}
