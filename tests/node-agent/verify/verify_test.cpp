#include <catch2/catch.hpp>
#include <functional>

#include "node-agent/verify/verify.hpp"

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

TEST_CASE("report JSON carries expected, actual and pass per property") {
  Observations o = tuned_board();
  o.thp_enabled = "always madvise [never]";
  auto json = report_json(evaluate(tuned_contract(), o));
  CHECK(json.find("\"ok\":false") != std::string::npos);
  CHECK(json.find("\"property\":\"thp\"") != std::string::npos);
  CHECK(json.find("\"mem_available_kb\":943312") != std::string::npos);
  auto table = report_table(evaluate(tuned_contract(), o));
  CHECK(table.find("NOT verified: 1 of 7") != std::string::npos);
}
