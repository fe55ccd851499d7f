#include <catch2/catch.hpp>

#include "node-agent/bench/topology.hpp"
#include "node-agent/verify/parsers.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet::agent::bench;
using fleet::agent::parse_id_list;

TEST_CASE("CPU lists parse as the kernel prints them") {
  CHECK(*parse_id_list("0-3\n") == std::vector<int>{0, 1, 2, 3});
  CHECK(*parse_id_list("0,2-3,7") == std::vector<int>{0, 2, 3, 7});
  CHECK(parse_id_list("")->empty());
  for (const char* bad : {"3-1", "a", "1,,2", "-1", "0-"}) {
    INFO(bad);
    auto r = parse_id_list(bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == fleet::Errc::parse);
  }
}

TEST_CASE("cache sizes parse with their unit") {
  CHECK(*parse_cache_size("2048K\n") == 2048u * 1024);
  CHECK(*parse_cache_size("1M") == 1u << 20);
  CHECK(*parse_cache_size("512") == 512u);
  CHECK_FALSE(parse_cache_size("lots"));
}

TEST_CASE("threads alternate between NUMA nodes") {
  CHECK(spread_over_nodes({{0, 1}, {2, 3}}, {0, 1, 2, 3}) == std::vector<int>{0, 2, 1, 3});
  CHECK(spread_over_nodes({{0, 1, 2, 3}}, {0, 1, 2, 3}) == std::vector<int>{0, 1, 2, 3});
  // Only the CPUs this process may use; a node left without any drops out.
  CHECK(spread_over_nodes({{0, 1}, {2, 3}}, {1, 3}) == std::vector<int>{1, 3});
  CHECK(spread_over_nodes({{0, 1}, {2, 3}}, {0, 1}) == std::vector<int>{0, 1});
}

TEST_CASE("the topology of a folder shaped like a Pi 5 with fake NUMA") {
  fleet::test::TempDir root;
  root.write("sys/devices/system/cpu/online", "0-3\n");
  root.write("sys/devices/system/node/online", "0-1\n");
  root.write("sys/devices/system/node/node0/cpulist", "0-3\n");
  root.write("sys/devices/system/node/node1/cpulist", "\n");  // fake NUMA: memory-only nodes
  root.write("sys/devices/system/cpu/cpu0/cache/index0/level", "1\n");
  root.write("sys/devices/system/cpu/cpu0/cache/index0/size", "64K\n");
  root.write("sys/devices/system/cpu/cpu0/cache/index2/level", "3\n");
  root.write("sys/devices/system/cpu/cpu0/cache/index2/size", "2048K\n");
  root.write("proc/meminfo", "MemTotal: 8000000 kB\nMemAvailable: 7000000 kB\n");
  root.write("sys/kernel/mm/transparent_hugepage/hpage_pmd_size", "33554432\n");
  root.write("sys/kernel/mm/transparent_hugepage/enabled", "always [madvise] never\n");
  auto t = observe_topology(root.path());
  CHECK(t.cpus == std::vector<int>{0, 1, 2, 3});
  REQUIRE(t.node_cpus.size() == 2);
  CHECK(t.node_cpus[1].empty());
  CHECK(t.llc_bytes == 2048u * 1024);
  CHECK(t.mem_available_bytes == 7000000ull * 1024);
  CHECK(t.pmd_bytes == 32u << 20);
  CHECK(t.thp_mode == "madvise");
  // Memory-only nodes take no threads.
  CHECK(spread_over_nodes(t.node_cpus, t.cpus) == t.cpus);
}
