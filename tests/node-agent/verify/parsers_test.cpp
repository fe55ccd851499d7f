#include <catch2/catch.hpp>

#include "common/kconfig.hpp"
#include "node-agent/verify/parsers.hpp"

using namespace fleet;
using namespace fleet::agent;

TEST_CASE("THP mode: the bracketed word") {
  CHECK(parse_thp_mode("always [madvise] never\n").value() == "madvise");
  CHECK(parse_thp_mode("[always] madvise never").value() == "always");
  CHECK(parse_thp_mode("always madvise [never]").value() == "never");
  CHECK_FALSE(parse_thp_mode("always madvise never"));
  CHECK_FALSE(parse_thp_mode("[]"));
  CHECK_FALSE(parse_thp_mode(""));
}

TEST_CASE("NUMA node lists count nodes") {
  CHECK(count_node_list("0\n").value() == 1);
  CHECK(count_node_list("0-1\n").value() == 2);
  CHECK(count_node_list("0-7").value() == 8);
  CHECK(count_node_list("0,2-3").value() == 3);
  CHECK_FALSE(count_node_list(""));
  CHECK_FALSE(count_node_list("3-1"));
  CHECK_FALSE(count_node_list("a-b"));
  CHECK_FALSE(count_node_list("0,,1"));
  auto huge = count_node_list("0-2000000000");  // refused, not expanded
  REQUIRE_FALSE(huge);
  CHECK(huge.error().message == "node list: bad range '0-2000000000'");
}

TEST_CASE("meminfo: MemTotal and MemAvailable in kB") {
  auto m = parse_meminfo("MemTotal:        8245016 kB\nMemFree:         7000000 kB\nMemAvailable:    7800123 kB\n");
  REQUIRE(m);
  CHECK(m->mem_total_kb == 8245016);
  CHECK(m->mem_available_kb == 7800123);
  auto missing = parse_meminfo("MemTotal: 1 kB\n");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("MemAvailable") != std::string::npos);
}

TEST_CASE("smaps: the first KernelPageSize in bytes") {
  CHECK(parse_smaps_page_size("00400000-00452000 r-xp\nSize: 328 kB\nKernelPageSize:       16 kB\nMMUPageSize: 16 kB\n")
            .value() == 16384);
  CHECK(parse_smaps_page_size("KernelPageSize: 4 kB").value() == 4096);
  CHECK_FALSE(parse_smaps_page_size("Size: 4 kB"));
  CHECK_FALSE(parse_smaps_page_size("KernelPageSize: 16 MB"));
  // Found by tests/fuzz/proc_fuzz: kB * 1024 overflowed a long (undefined behaviour).
  CHECK_FALSE(parse_smaps_page_size("KernelPageSize: 2630584379449598868 kB"));
  CHECK(parse_smaps_page_size("KernelPageSize: 9007199254740991 kB").value() == 9007199254740991L * 1024);
}

TEST_CASE("HZ and tick mode come from the kernel config") {
  auto cfg = kconfig::to_map(kconfig::parse("CONFIG_HZ_100=y\nCONFIG_HZ=100\nCONFIG_NO_HZ_COMMON=y\nCONFIG_NO_HZ_IDLE=y\n"
                                            "# CONFIG_NO_HZ_FULL is not set\n"));
  CHECK(config_hz(cfg).value() == 100);
  CHECK(config_tick_mode(cfg).value() == "NO_HZ_IDLE");
  auto full = kconfig::to_map(kconfig::parse("CONFIG_HZ=250\nCONFIG_NO_HZ_FULL=y\n"));
  CHECK(config_hz(full).value() == 250);
  CHECK(config_tick_mode(full).value() == "NO_HZ_FULL");
  auto periodic = kconfig::to_map(kconfig::parse("CONFIG_HZ_PERIODIC=y\n"));
  CHECK(config_tick_mode(periodic).value() == "HZ_PERIODIC");
  CHECK_FALSE(config_hz(periodic));
  CHECK_FALSE(config_tick_mode(kconfig::to_map(kconfig::parse("CONFIG_X=y\n"))));
  CHECK_FALSE(config_hz(kconfig::to_map(kconfig::parse("CONFIG_HZ=fast\n"))));
}
