#include <catch2/catch.hpp>
#include <functional>

#include "node-agent/lifecycle/wire.hpp"
#include "node-agent/verify/verify.hpp"
#include "proto/codec.hpp"

using namespace fleet;
using namespace fleet::agent;

namespace {

Contract tuned_contract() {
  Contract c;
  c.kernel_release = "6.1.192-fleet-qemu";
  c.page_size = 16384;
  c.thp = "madvise";
  c.numa_nodes = 2;
  c.hz = 100;
  c.tick = "NO_HZ_IDLE";
  c.headless = true;
  return c;
}

// What a board running the tuned kernel shows.
Observations tuned_board() {
  Observations o;
  o.page_size_sysconf = 16384;
  o.smaps = "KernelPageSize:       16 kB\n";
  o.thp_enabled = "always [madvise] never\n";
  o.nodes_online = "0-1\n";
  o.kernel_config = "CONFIG_HZ=100\nCONFIG_NO_HZ_IDLE=y\n";
  o.osrelease = "6.1.192-fleet-qemu\n";
  o.meminfo = "MemTotal: 1036304 kB\nMemAvailable: 943312 kB\n";
  return o;
}

const Check& find(const Report& r, const std::string& property) {
  for (const auto& c : r.checks)
    if (c.property == property) return c;
  FAIL("no check " << property);
  throw;
}

}  // namespace

TEST_CASE("the tuned board passes every property") {
  Report r = evaluate(tuned_contract(), tuned_board());
  CHECK(r.ok());
  CHECK(r.checks.size() == 7);
  REQUIRE(r.memory);
  CHECK(r.memory->mem_total_kb == 1036304);
}

// Scenario table: one change to the board in, the one property that must fail out.
TEST_CASE("each deviation fails exactly its property") {
  struct Scenario {
    const char* name;
    std::function<void(Observations&)> change;
    const char* fails;
    const char* actual;
  };
  const Scenario scenarios[] = {
      {"4K pages", [](Observations& o) { o.page_size_sysconf = 4096; o.smaps = "KernelPageSize: 4 kB\n"; }, "page_size", "4096"},
      {"sysconf and smaps disagree", [](Observations& o) { o.smaps = "KernelPageSize: 4 kB\n"; }, "page_size", "16384"},
      {"THP never (cmdline)", [](Observations& o) { o.thp_enabled = "always madvise [never]\n"; }, "thp", "never"},
      {"THP always", [](Observations& o) { o.thp_enabled = "[always] madvise never\n"; }, "thp", "always"},
      {"THP not built", [](Observations& o) { o.thp_enabled.reset(); }, "thp", "(not built)"},
      {"one node", [](Observations& o) { o.nodes_online = "0\n"; }, "numa_nodes", "1"},
      {"no NUMA at all", [](Observations& o) { o.nodes_online.reset(); }, "numa_nodes", "1"},
      {"HZ 250", [](Observations& o) { o.kernel_config = "CONFIG_HZ=250\nCONFIG_NO_HZ_IDLE=y\n"; }, "hz", "250"},
      {"periodic tick", [](Observations& o) { o.kernel_config = "CONFIG_HZ=100\nCONFIG_HZ_PERIODIC=y\n"; }, "tick", "HZ_PERIODIC"},
      {"old kernel booted (os_prefix fallback)", [](Observations& o) { o.osrelease = "6.6.51+rpt-rpi-2712\n"; },
       "kernel_release", "6.6.51+rpt-rpi-2712"},
      {"DRM present", [](Observations& o) { o.drm_present = true; }, "headless", "no"},
      {"sound present", [](Observations& o) { o.asound_present = true; }, "headless", "no"},
  };
  for (const auto& s : scenarios) {
    INFO(s.name);
    Observations o = tuned_board();
    s.change(o);
    Report r = evaluate(tuned_contract(), o);
    CHECK_FALSE(r.ok());
    for (const auto& c : r.checks) {
      INFO(c.property << ": " << c.detail);
      CHECK(c.pass == (c.property != s.fails));
    }
    CHECK(find(r, s.fails).actual == s.actual);
    CHECK_FALSE(find(r, s.fails).detail.empty());
  }
}

TEST_CASE("without /proc/config.gz, hz and tick fail and say why") {
  Observations o = tuned_board();
  o.kernel_config.reset();
  o.kernel_config_error = "cannot read /proc/config.gz (kernel needs CONFIG_IKCONFIG=y ...)";
  Report r = evaluate(tuned_contract(), o);
  CHECK_FALSE(find(r, "hz").pass);
  CHECK(find(r, "hz").detail.find("IKCONFIG") != std::string::npos);
  CHECK_FALSE(find(r, "tick").pass);
  CHECK(find(r, "page_size").pass);
}

TEST_CASE("numa_nodes_min accepts more nodes") {
  Contract c = tuned_contract();
  c.numa_nodes.reset();
  c.numa_nodes_min = 2;
  Observations o = tuned_board();
  o.nodes_online = "0-7";
  Report r = evaluate(c, o);
  CHECK(find(r, "numa_nodes").pass);
  CHECK(find(r, "numa_nodes").expected == ">= 2");
  o.nodes_online = "0";
  CHECK_FALSE(evaluate(c, o).ok());
}

TEST_CASE("only the properties in the contract are checked") {
  Contract c;
  c.thp = "madvise";
  Report r = evaluate(c, tuned_board());
  REQUIRE(r.checks.size() == 1);
  CHECK(r.checks[0].property == "thp");
}

TEST_CASE("the Verification's JSON carries expected, actual and pass per property, and reads back whole") {
  Observations o = tuned_board();
  o.thp_enabled = "always madvise [never]";
  auto json = wire::to_json(verification_message(evaluate(tuned_contract(), o)));
  REQUIRE(json);
  CHECK(json->find("\"ok\":false") != std::string::npos);
  CHECK(json->find("\"property\":\"thp\"") != std::string::npos);
  // The JSON mapping writes 64-bit integers as strings; a reader takes either.
  CHECK(json->find("\"mem_available_kb\":\"943312\"") != std::string::npos);
  auto back = wire::parse<fleet::v1::Verification>(*json, "test");
  REQUIRE(back);
  CHECK_FALSE(back->ok());
  CHECK(back->checks_size() == 7);
  CHECK(back->memory().mem_available_kb() == 943312);
  int failing = 0;
  for (const auto& c : back->checks()) {
    if (c.pass()) continue;
    ++failing;
    CHECK(c.property() == "thp");
    CHECK(c.actual() == "never");
  }
  CHECK(failing == 1);
  auto table = report_table(evaluate(tuned_contract(), o));
  CHECK(table.find("NOT verified: 1 of 7") != std::string::npos);
}

TEST_CASE("NUMA emulation: as many nodes as the bootloader's numa=fake asks for, none asked is a warning") {
  Contract c = tuned_contract();
  c.numa_nodes.reset();
  c.numa_emulation = true;
  Observations o = tuned_board();
  o.cmdline = "reboot=w numa_policy=interleave  numa=fake=4 system_heap.max_order=0  console=ttyAMA0\n";
  o.nodes_online = "0-3\n";
  auto r = evaluate(c, o);
  CHECK(r.ok());
  CHECK(find(r, "numa_nodes").expected == "4 (numa=fake=4)");
  CHECK(find(r, "numa_nodes").actual == "4");
  CHECK(find(r, "numa_nodes").warning.empty());

  INFO("a kernel without NUMA_EMU makes one node of numa=fake=4: a failure");
  o.nodes_online = "0\n";
  auto one = evaluate(c, o);
  CHECK_FALSE(one.ok());
  CHECK_FALSE(find(one, "numa_nodes").pass);
  CHECK_THAT(find(one, "numa_nodes").detail, Catch::Contains("CONFIG_NUMA_EMU"));

  INFO("an old bootloader adds no numa=fake: one node passes, with a warning naming the bootloader");
  o.cmdline = "reboot=w numa_policy=interleave  console=ttyAMA0\n";
  bootloader::Info old;
  old.build_timestamp = 1715613301;  // 2024-05-13
  old.version = "83b5e5e61a70a93caee65cbd6aea77bdd485e5b0";
  o.bootloader = old;
  auto warned = evaluate(c, o);
  CHECK(warned.ok());
  const Check& numa = find(warned, "numa_nodes");
  CHECK(numa.pass);
  CHECK_THAT(numa.warning, Catch::Contains("2024-05-13") && Catch::Contains("predates NUMA emulation") &&
                               Catch::Contains("rpi-eeprom-update"));
  const Check& loader = find(warned, "bootloader");
  CHECK(loader.pass);
  CHECK(loader.actual == "2024-05-13 (83b5e5e6)");
  CHECK_THAT(loader.warning, Catch::Contains("2024-12-07"));
  CHECK_THAT(report_table(warned), Catch::Contains("WARN"));
  CHECK_THAT(wire::to_json(verification_message(warned)).value_or(""),
             Catch::Contains("\"warning\":\"the bootloader 2024-05-13"));
}

TEST_CASE("the bootloader check: a current one passes quietly, an unreadable node warns, no node no check") {
  Contract c = tuned_contract();
  Observations o = tuned_board();
  for (const auto& k : evaluate(c, o).checks) CHECK(k.property != "bootloader");
  bootloader::Info current;
  current.build_timestamp = 1741626637;  // 2025-03-10
  o.bootloader = current;
  CHECK(find(evaluate(c, o), "bootloader").warning.empty());
  o.bootloader.reset();
  o.bootloader_error = "chosen/bootloader/build-timestamp: 2 bytes, a device-tree u32 has 4";
  const auto r = evaluate(c, o);
  CHECK(r.ok());
  CHECK_THAT(find(r, "bootloader").detail, Catch::Contains("2 bytes"));
  CHECK_FALSE(find(r, "bootloader").warning.empty());
}
