#include <catch2/catch.hpp>

#include "common/kconfig.hpp"
#include "controller/kernel/config_check.hpp"

using namespace fleet;
using namespace fleet::kernel;

namespace {

const char* k_kconfig = R"(
menu "Block"
config BLK_DEV
	bool "Block devices"
	default y

if BLK_DEV
config VIRTIO_BLK
	tristate "Virtio block driver"
	depends on VIRTIO
	help
	  depends on NOTHING here: help text is not parsed as a dependency? it is, but harmless
endif
endmenu

choice
	prompt "Timer frequency"
	depends on !TINY
	default HZ_250
config HZ_100
	bool "100 HZ"
config HZ_250
	bool "250 HZ"
endchoice

menuconfig DRM
	tristate "Direct Rendering Manager"
	depends on (AGP || AGP=n) && !EMULATED_CMPXCHG && HAS_DMA
)";

std::map<std::string, std::string> cfg(const char* text) { return kconfig::to_map(kconfig::parse(text)); }

}  // namespace

TEST_CASE("requirements: later fragments override earlier ones, origins kept") {
  auto r = requirements({{"a.config", "CONFIG_X=y\nCONFIG_Y=y\n"}, {"b.config", "# CONFIG_X is not set\n"}});
  REQUIRE(r.size() == 2);
  CHECK(r[0].symbol == "X");
  CHECK(r[0].value == "n");
  CHECK(r[0].origin == "b.config:1");
  CHECK(r[1].origin == "a.config:2");
}

TEST_CASE("index_kconfig: definitions with depends, enclosing if and choice") {
  KconfigIndex index;
  index_kconfig(k_kconfig, "drivers/Kconfig", index);
  REQUIRE(index.contains("VIRTIO_BLK"));
  CHECK(index["VIRTIO_BLK"].file == "drivers/Kconfig");
  CHECK(index["VIRTIO_BLK"].line == 8);
  CHECK(index["VIRTIO_BLK"].depends == std::vector<std::string>{"BLK_DEV", "VIRTIO"});
  CHECK(index["BLK_DEV"].depends.empty());
  CHECK(index["HZ_100"].depends == std::vector<std::string>{"!TINY"});
  CHECK(index["DRM"].depends.size() == 1);
}

TEST_CASE("check_config: satisfied requirements give no findings, absent counts as not set") {
  auto wanted = requirements({{"f", "CONFIG_A=y\n# CONFIG_DRM is not set\nCONFIG_HZ=100\n"}});
  CHECK(check_config(wanted, cfg("CONFIG_A=y\nCONFIG_HZ=100\n"), {}, {}).empty());
}

TEST_CASE("check_config: a dropped option names its unmet dependency and its origin") {
  KconfigIndex index;
  index_kconfig(k_kconfig, "drivers/Kconfig", index);
  auto wanted = requirements({{"base/qemu-virt.config", "CONFIG_VIRTIO_BLK=y\n"}});
  auto f = check_config(wanted, cfg("CONFIG_VIRTIO=y\n"), {}, index);
  REQUIRE(f.size() == 1);
  CHECK_FALSE(f[0].optional_missing);
  CHECK(f[0].actual == "n");
  CHECK_THAT(f[0].explanation, Catch::Contains("CONFIG_VIRTIO_BLK=y was requested (base/qemu-virt.config:1)"));
  CHECK_THAT(f[0].explanation, Catch::Contains("depends on BLK_DEV  [BLK_DEV=n]"));
  CHECK_THAT(f[0].explanation, Catch::Contains("depends on VIRTIO  [VIRTIO=y]"));
}

TEST_CASE("check_config: optional symbols missing from the tree are notes, required ones errors") {
  KconfigIndex index;
  index_kconfig(k_kconfig, "drivers/Kconfig", index);
  auto wanted = requirements({{"memory.config", "CONFIG_NUMA_EMU=y\nCONFIG_MADE_UP=y\n"}});
  auto f = check_config(wanted, cfg(""), {"NUMA_EMU"}, index);
  REQUIRE(f.size() == 2);
  CHECK(f[0].optional_missing);
  CHECK_FALSE(f[1].optional_missing);
  CHECK_THAT(f[1].explanation, Catch::Contains("no such option for arm64"));
}

TEST_CASE("check_config without the tree: an optional symbol absent from the .config is a note, one set off is not") {
  auto wanted = requirements({{"memory.config", "CONFIG_NUMA_EMU=y\nCONFIG_NUMA=y\n"}});
  auto f = check_config(wanted, cfg("CONFIG_NUMA=y\n"), {"NUMA_EMU"}, {});
  REQUIRE(f.size() == 1);
  CHECK(f[0].optional_missing);
  CHECK_THAT(f[0].explanation, Catch::Contains("--source DIR checks the tree"));
  // "is not set" means the tree has it and it was turned off: that is an error even if optional.
  f = check_config(wanted, cfg("CONFIG_NUMA=y\n# CONFIG_NUMA_EMU is not set\n"), {"NUMA_EMU"}, {});
  REQUIRE(f.size() == 1);
  CHECK_FALSE(f[0].optional_missing);
}

TEST_CASE("check_config: a wrong value (m for y, string) is a finding") {
  auto wanted = requirements({{"f", "CONFIG_DUMMY=y\nCONFIG_LOCALVERSION=\"-a\"\n"}});
  auto f = check_config(wanted, cfg("CONFIG_DUMMY=m\nCONFIG_LOCALVERSION=\"-b\"\n"), {}, {});
  REQUIRE(f.size() == 2);
  CHECK(f[0].actual == "m");
}

TEST_CASE("contract_conflicts: the config must deliver the contract") {
  Contract c;
  c.page_size = 16384;
  c.thp = "madvise";
  c.hz = 100;
  c.tick = "NO_HZ_IDLE";
  c.numa_nodes = 2;
  auto good = cfg("CONFIG_ARM64_16K_PAGES=y\nCONFIG_TRANSPARENT_HUGEPAGE=y\nCONFIG_TRANSPARENT_HUGEPAGE_MADVISE=y\n"
                  "CONFIG_HZ=100\nCONFIG_NO_HZ_IDLE=y\nCONFIG_NUMA=y\nCONFIG_IKCONFIG=y\nCONFIG_IKCONFIG_PROC=y\n");
  CHECK(contract_conflicts(c, good).empty());
  auto bad = cfg("CONFIG_ARM64_4K_PAGES=y\nCONFIG_TRANSPARENT_HUGEPAGE=y\nCONFIG_TRANSPARENT_HUGEPAGE_ALWAYS=y\n"
                 "CONFIG_HZ=250\nCONFIG_HZ_PERIODIC=y\nCONFIG_IKCONFIG=m\nCONFIG_IKCONFIG_PROC=y\n");
  auto conflicts = contract_conflicts(c, bad);
  CHECK(conflicts.size() == 6);
}

TEST_CASE("diff_configs: requested, follows (selected, depends, default), unexplained") {
  KconfigIndex index;
  index_kconfig(R"(config VIRTIO_PCI
	tristate "virtio pci"
	depends on PCI && VIRTIO_MENU
	select VIRTIO
config VIRTIO
	tristate
config VIRTIO_BLK
	tristate "blk"
	depends on VIRTIO
config NET_9P_FD
	default NET_9P
config HZ_100
	bool "100"
)",
                "drivers/virtio/Kconfig", index);
  std::map<std::string, std::string> before = {{"PCI", "y"}, {"HZ_100", "y"}, {"VIRTIO_BLK", "m"}};
  std::map<std::string, std::string> after = {{"PCI", "y"},    {"VIRTIO_PCI", "y"}, {"VIRTIO", "y"},
                                              {"VIRTIO_BLK", "y"}, {"NET_9P", "y"},     {"NET_9P_FD", "y"},
                                              {"SOMETHING", "y"}};
  std::vector<Requirement> requested = {{"VIRTIO_PCI", "y", "fragments/qemu-virt-board.config:11"},
                                        {"NET_9P", "y", "fragments/qemu-virt-board.config:17"},
                                        {"HZ_100", "y", "fragments/tick.config:4"}};
  auto changes = diff_configs(before, after, {}, requested, index);
  std::map<std::string, ConfigChange> by;
  for (const auto& c : changes) by[c.symbol] = c;
  CHECK(by.size() == 7);  // PCI is the same; HZ_100 was dropped
  CHECK(by["VIRTIO_PCI"].why == ConfigChange::Why::requested);
  CHECK(by["VIRTIO_PCI"].because == "fragments/qemu-virt-board.config:11");
  CHECK(by["VIRTIO"].why == ConfigChange::Why::follows);
  CHECK(by["VIRTIO"].because == "selected by VIRTIO_PCI");
  CHECK(by["VIRTIO_BLK"].why == ConfigChange::Why::follows);
  CHECK(by["VIRTIO_BLK"].before == "m");
  CHECK_THAT(by["VIRTIO_BLK"].because, Catch::Contains("depends on VIRTIO"));
  CHECK(by["NET_9P_FD"].why == ConfigChange::Why::follows);
  CHECK(by["NET_9P_FD"].because == "default NET_9P");
  CHECK(by["SOMETHING"].why == ConfigChange::Why::unexplained);
  // A requested symbol that did not get its value is not "requested": it is a change nothing explains.
  CHECK(by["HZ_100"].after == "n");
  CHECK(by["HZ_100"].why == ConfigChange::Why::unexplained);
  // Asked for by A's fragments: explained by its old value, in the other direction too.
  auto reverse = diff_configs(after, before, requested, {}, index);
  for (const auto& c : reverse) {
    if (c.symbol == "VIRTIO_PCI") CHECK(c.why == ConfigChange::Why::requested);
  }
}

TEST_CASE("requested_changed compares final values, so an optional symbol absent from both is no change") {
  std::vector<Requirement> wanted = {{"NUMA_EMU", "y", "fragments/memory.config:14"}, {"HZ_100", "y", "tick:4"}};
  std::map<std::string, std::string> a = {{"HZ_100", "y"}};
  CHECK(requested_changed(wanted, a, a).empty());
  std::map<std::string, std::string> b = {{"HZ_250", "y"}};
  CHECK(requested_changed(wanted, a, b) == std::vector<std::string>{"HZ_100"});
}
