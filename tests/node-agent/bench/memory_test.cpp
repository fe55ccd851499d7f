#include <catch2/catch.hpp>

#include <atomic>
#include <set>

#include "node-agent/bench/memory.hpp"

using namespace fleet::agent::bench;

TEST_CASE("AnonHugePages of one mapping is read from smaps") {
  const std::string smaps =
      "7f0000000000-7f0000400000 rw-p 00000000 00:00 0 \n"
      "Size:               4096 kB\n"
      "AnonHugePages:      2048 kB\n"
      "7f0000400000-7f0000800000 rw-p 00000000 00:00 0 \n"
      "Size:               4096 kB\n"
      "AnonHugePages:         0 kB\n";
  CHECK(smaps_anon_huge_kb(smaps, 0x7f0000000000) == 2048);
  CHECK(smaps_anon_huge_kb(smaps, 0x7f0000400000) == 0);
  CHECK(smaps_anon_huge_kb(smaps, 0x1000) == 0);  // not mapped
}

TEST_CASE("a region is aligned to the huge page size and zero-filled") {
  auto r = Region::map(5u << 20, 2u << 20, Huge::on);
  REQUIRE(r);
  CHECK(reinterpret_cast<std::uintptr_t>(r->data()) % (2u << 20) == 0);
  CHECK(r->size() == 6u << 20);
  CHECK(r->data()[r->size() - 1] == std::byte{0});
  CHECK_FALSE(Region::map(0, 4096, Huge::off));
}

TEST_CASE("a team runs the job once on every thread, every time") {
  Team team(3, {});
  std::atomic<int> calls{0};
  std::set<int> seen;
  std::mutex mu;
  for (int round = 0; round < 50; ++round) {
    team.run([&](int i) {
      calls++;
      std::lock_guard lock(mu);
      seen.insert(i);
    });
  }
  CHECK(calls == 150);
  CHECK(seen == std::set<int>{0, 1, 2});
  CHECK(slice(10, 0, 3) == std::pair<std::size_t, std::size_t>{0, 3});
  CHECK(slice(10, 2, 3) == std::pair<std::size_t, std::size_t>{6, 10});
}

TEST_CASE("bandwidth: every kernel, thread count and huge page mode gets a figure") {
  Topology topo;
  topo.cpus = {0, 1};
  topo.node_cpus = {{0, 1}};
  BandwidthOptions o;
  o.array_bytes = 4u << 20;
  o.repetitions = 1;
  auto r = measure_bandwidth(topo, o);
  REQUIRE(r);
  CHECK(r->results.size() == 3 * 2 * 2);
  for (const auto& x : r->results) CHECK(x.gbps > 0);
  CHECK(r->gbps(Kernel::triad, 2, Huge::off) > 0);
  CHECK(r->gbps(Kernel::triad, 3, Huge::off) == 0);
}

TEST_CASE("the default arrays are 4x the cache, capped by memory, and say so") {
  Topology t;
  t.llc_bytes = 480u << 20;
  t.mem_available_bytes = 24ull << 30;
  std::string note;
  CHECK(default_array_bytes(t, &note) == 1920u << 20);
  CHECK(note.empty());
  t.llc_bytes = 2u << 20;  // a Pi 5: the 256 MiB floor
  CHECK(default_array_bytes(t, &note) == 256u << 20);
  t.mem_available_bytes = 600u << 20;
  CHECK(default_array_bytes(t, &note) == 100u << 20);
  CHECK(note.find("capped") != std::string::npos);
}
