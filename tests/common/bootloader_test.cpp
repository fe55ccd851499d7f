#include <catch2/catch.hpp>

#include "common/bootloader.hpp"

using namespace fleet;
using namespace fleet::bootloader;

namespace {
std::string be32(std::uint32_t v) {
  return {static_cast<char>(v >> 24), static_cast<char>(v >> 16), static_cast<char>(v >> 8), static_cast<char>(v)};
}
Info built_on(std::int64_t ts) {
  Info i;
  i.build_timestamp = ts;
  return i;
}
}  // namespace

TEST_CASE("bootloader node: big-endian u32 properties and a NUL-terminated version, as a Pi 5 writes them") {
  // The values of a real Pi 5 (rpi-eeprom #575).
  auto info = parse_node({{"build-timestamp", std::string("\x66\x42\x2e\x75", 4)},
                          {"version", std::string("83b5e5e61a70a93caee65cbd6aea77bdd485e5b0") + '\0'},
                          {"capabilities", be32(0x7f)},
                          {"tryboot", be32(1)},
                          {"partition", be32(2)},
                          {"rsts", be32(0x1000)}});  // unknown to us: ignored
  REQUIRE(info);
  CHECK(info->build_timestamp == 1715613301);
  CHECK(info->version == "83b5e5e61a70a93caee65cbd6aea77bdd485e5b0");
  CHECK(info->capabilities == 0x7fu);
  CHECK(info->tryboot == true);
  CHECK(info->partition == 2u);
  CHECK(describe(*info) == "2024-05-13 (83b5e5e6)");
}

TEST_CASE("bootloader node: a property of the wrong size or a version that is not text is an error naming it") {
  auto short_ts = parse_node({{"build-timestamp", std::string("\x01\x02", 2)}});
  REQUIRE_FALSE(short_ts);
  CHECK_THAT(short_ts.error().message, Catch::Contains("build-timestamp") && Catch::Contains("2 bytes"));
  auto odd = parse_node({{"version", std::string("abc\ndef")}});
  REQUIRE_FALSE(odd);
  CHECK_THAT(odd.error().message, Catch::Contains("version"));
  CHECK(parse_node({})->build_timestamp == std::nullopt);
}

TEST_CASE("bootloader: tryboot is refused before 2024-05-13 or without the capability bit, allowed after") {
  CHECK(tryboot_problem(built_on(k_tryboot.unix_time)).empty());
  CHECK(tryboot_problem(built_on(1741626637)).empty());
  auto old = tryboot_problem(built_on(k_tryboot.unix_time - 1));
  CHECK_THAT(old, Catch::Contains("2024-05-12") && Catch::Contains("2024-05-13") && Catch::Contains("#575"));
  Info no_bit = built_on(1741626637);
  no_bit.capabilities = 0x77;  // bit 3 clear
  CHECK_THAT(tryboot_problem(no_bit), Catch::Contains("cannot tryboot"));
  no_bit.capabilities = 0x7f;
  CHECK(tryboot_problem(no_bit).empty());
  CHECK(tryboot_problem(Info{}).empty());  // a node without a date: nothing to hold against it
}

TEST_CASE("bootloader: numa=fake by release, N from the memory size, the words in the Pi 5's order") {
  CHECK(fake_numa_nodes(1024) == 2);
  CHECK(fake_numa_nodes(2048) == 4);
  CHECK(fake_numa_nodes(4096) == 8);
  CHECK(fake_numa_nodes(8192) == 8);
  CHECK(fake_numa_nodes(16384) == 8);
  CHECK(fake_numa_nodes(256) == 1);

  const std::string mac = "2c:cf:67:01:02:03";
  auto old = cmdline_words(built_on(k_numa.unix_time - 86400), 2048, mac);
  CHECK(old == std::vector<std::string>{"smsc95xx.macaddr=2c:cf:67:01:02:03", "vc_mem.mem_base=0x3fc00000",
                                        "vc_mem.mem_size=0x40000000"});
  CHECK_THAT(numa_problem(built_on(k_numa.unix_time - 86400)), Catch::Contains("predates NUMA emulation"));
  auto numa = cmdline_words(built_on(k_numa.unix_time), 2048, mac);
  CHECK(numa.at(0) == "numa=fake=4");
  CHECK(numa.at(1) == "system_heap.max_order=0");
  CHECK(numa.at(2) == "smsc95xx.macaddr=2c:cf:67:01:02:03");
  CHECK(numa_problem(built_on(k_numa.unix_time)).empty());
  auto newest = cmdline_words(built_on(k_iommu_policy.unix_time), 8192, mac);
  CHECK(newest.at(0) == "numa=fake=8");
  CHECK(newest.at(2) == "iommu_dma_numa_policy=interleave");
}

TEST_CASE("fake_numa_of reads the count of numa=fake=N, the last word winning, and not a size") {
  CHECK(fake_numa_of("reboot=w numa_policy=interleave  numa=fake=8 system_heap.max_order=0  console=ttyAMA0") == 8);
  CHECK(fake_numa_of("numa=fake=4 numa=fake=2\n") == 2);
  CHECK(fake_numa_of("numa=fake=512M") == std::nullopt);
  CHECK(fake_numa_of("numa=fake=0") == std::nullopt);
  CHECK(fake_numa_of("xnuma=fake=4 numa_policy=interleave") == std::nullopt);
  CHECK(fake_numa_of("") == std::nullopt);
}
