#pragma once
// A state database with a finished rollout, written through the real Store into a real SQLite
// file: what the dashboard, /metrics and Prometheus are tested against. One board's name and
// one message carry markup, which every page must show as text.
#include <catch2/catch.hpp>

#include <string>

#include "controller/store/store.hpp"

namespace fleet::test {

inline constexpr const char* k_hostile_board = "<script>window.pwned=1</script>";
inline constexpr const char* k_hostile_message = "<img src=x onerror=\"window.pwned=2\"> & more";

inline std::string check_json(const char* property, const char* expected, const char* actual, bool pass) {
  return std::string(R"({"property":")") + property + R"(","expected":")" + expected + R"(","actual":")" + actual +
         R"(","pass":)" + (pass ? "true" : "false") + "}";
}

inline std::string verification_json(bool thp_pass) {
  return std::string(R"({"ok":)") + (thp_pass ? "true" : "false") + R"(,"checks":[)" +
         check_json("page_size", "16384", "16384", true) + "," +
         check_json("thp", "madvise", thp_pass ? "madvise" : "never", thp_pass) + "," +
         check_json("numa_nodes", "4", "4", true) + "," + check_json("bootloader", "any", "2025-05-08", true) + "]}";
}

inline std::string throughput_json(double tps, double temp_c, bool undervoltage) {
  return R"({"shape":"1b","tokens_per_s":)" + std::to_string(tps) +
         R"(,"effective_gbps":8.5,"read_gbps":12.25,"dot_path":"neon-dotprod","hugepage_advice":"none",)"
         R"("weights_huge_fraction":0.25,"temperature_c":)" +
         std::to_string(temp_c) + R"(,"undervoltage":)" + (undervoltage ? "true" : "false") + "}";
}

// Rollout "r-finished": pi-1 committed in the canary wave; pi-2 rolled back (thp failed) and
// the hostile board committed in wave 2. The gate stopped the rollout. pi-1 has three
// measured reports over time (two kernels), for its chart.
inline void seed_finished(store::Store& st, std::int64_t t0 = 1796000000000) {
  store::RolloutRow r;
  r.id = "r-finished";
  r.kernel_release = "6.12.49-v8-16k-fleet";
  r.state = vocab::RolloutState::stopped;
  r.message = "wave 2: 1 of 2 boards failed, more than --max-fail 0";
  r.serial = "1,100%";
  r.max_fail = "0";
  r.started_ms = t0;
  r.updated_ms = t0 + 60000;
  REQUIRE(st.put_rollout(r));
  struct B {
    const char* name;
    int wave;
    vocab::Outcome outcome;
    const char* release;
    const char* message;
  } boards[] = {
      {"pi-1", 0, vocab::Outcome::committed, "6.12.49-v8-16k-fleet", "committed"},
      {"pi-2", 1, vocab::Outcome::rolled_back, "6.12.47-v8-16k", "thp: expected madvise, got never"},
      {k_hostile_board, 1, vocab::Outcome::committed, "6.12.49-v8-16k-fleet", k_hostile_message},
  };
  std::uint64_t seq = 1;
  for (const auto& b : boards) {
    store::BoardRow row;
    row.rollout_id = r.id;
    row.board = b.name;
    row.wave = b.wave;
    row.step = vocab::Step::done;
    row.outcome = b.outcome;
    row.running_release = b.release;
    row.message = b.message;
    row.updated_ms = t0 + 50000;
    REQUIRE(st.put_board(row));
  }
  // pi-1's history: an older kernel, then the new one twice.
  REQUIRE(st.add_report({"pi-1", "r-old", seq++, "COMMITTED", "6.12.47-v8-16k", "committed", verification_json(true),
                         t0 - 86400000, throughput_json(5.25, 61, false)}));
  // Its trial against its committed kernel, measured alike at install: +8.3%.
  std::string measured = throughput_json(6.5, 64.5, false);
  measured.pop_back();
  measured += R"(,"baseline_tokens_per_s":6.0,"baseline_release":"6.12.47-v8-16k","baseline_measured_by":)"
              R"("probe 1b (synthetic weights, neon-dotprod), all threads","tokens_timed":29,"spread":0.05})";
  REQUIRE(st.add_report({"pi-1", "r-finished", seq++, "COMMITTED", "6.12.49-v8-16k-fleet", "committed",
                         verification_json(true), t0 + 20000, measured}));
  REQUIRE(st.add_report({"pi-2", "r-finished", seq++, "VERIFY_FAILED", "6.12.49-v8-16k-fleet", "thp",
                         verification_json(false), t0 + 40000, throughput_json(4.75, 82, true)}));
  REQUIRE(st.add_report({k_hostile_board, "r-finished", seq++, "COMMITTED", "6.12.49-v8-16k-fleet", k_hostile_message,
                         verification_json(true), t0 + 45000, throughput_json(6.25, 55, false)}));
}

}  // namespace fleet::test
