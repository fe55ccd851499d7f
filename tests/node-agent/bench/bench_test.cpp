#include <catch2/catch.hpp>

#include "node-agent/bench/bench.hpp"
#include "node-agent/lifecycle/wire.hpp"

using namespace fleet::agent::bench;
using fleet::agent::throughput_message;

TEST_CASE("the report's throughput: the probe, read bandwidth on the most threads measured, llama-bench") {
  BenchReport r;
  r.topo.cpus = {0, 1, 2, 3};
  BandwidthReport bw;
  bw.results = {{Kernel::read, 1, Huge::on, 9.0, 1, 1.0},
                {Kernel::read, 3, Huge::on, 12.5, 1, 1.0},
                {Kernel::read, 3, Huge::off, 10.0, 1, 0.0},
                {Kernel::triad, 3, Huge::on, 11.0, 1, 1.0}};
  r.bandwidth = bw;
  ProbeResult p;
  p.shape = *shape_named("3b");
  p.tokens_per_s = 5.25;
  p.effective_gbps = 9.5;
  p.threads = 3;
  p.dot_path = "neon-dotprod";
  p.numa_nodes = 8;
  r.probe = p;
  auto j = throughput_message(r);
  CHECK(j.shape() == "3b");
  CHECK(j.tokens_per_s() == 5.25);
  CHECK(j.read_gbps() == 12.5);  // --threads 3 on a 4-CPU board: the 3-thread figure
  CHECK(j.read_gbps_nohuge() == 10.0);
  CHECK(j.numa_nodes() == 8);
  CHECK(j.llama_tg_ts() == 0);
  CHECK_FALSE(j.has_temperature_c());  // a board without a sensor says nothing, not 0 C

  LlamaBenchResult lb;
  LlamaBenchTest tg;
  tg.n_gen = 16;
  tg.avg_ts = 4.5;
  tg.stddev_ts = 0.25;
  lb.generation = tg;
  r.llama = lb;
  r.model = ModelFile{"/srv/models/m.gguf", 100, "Q4_0"};
  r.health.temperature_c = 81.26;
  j = throughput_message(r);
  CHECK(j.llama_tg_ts() == 4.5);
  CHECK(j.llama_tg_stddev() == 0.25);
  CHECK(j.model() == "m.gguf");
  CHECK(j.llama_pp_ts() == 0);
  CHECK(j.temperature_c() == Approx(81.3));
}

TEST_CASE("auto picks the largest shape that fits in half the free memory") {
  Topology t;
  t.mem_available_bytes = 7ull << 30;  // an 8 GB Pi after boot
  CHECK(auto_shape(t).name == "7b");
  t.mem_available_bytes = 3ull << 30;
  CHECK(auto_shape(t).name == "1b");
  t.mem_available_bytes = 900ull << 20;  // a virtual board
  CHECK(auto_shape(t).name == "110m");
  t.mem_available_bytes = 1ull << 20;
  CHECK(auto_shape(t).name == "15m");  // the smallest when nothing fits
}
