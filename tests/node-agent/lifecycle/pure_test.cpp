#include <catch2/catch.hpp>

#include <cmath>

#include "node-agent/lifecycle/compare.hpp"

#include "node-agent/lifecycle/lifecycle.hpp"

using namespace fleet::agent;

TEST_CASE("config_with_prefix replaces os_prefix and keeps everything else") {
  std::string stock = "# hi\n[all]\ndtparam=watchdog=on\n[pi4]\nos_prefix=old/\n";
  auto a = config_with_prefix(stock, "fleet-1");
  CHECK(a == "# hi\n[all]\ndtparam=watchdog=on\n[pi4]\n[all]\nos_prefix=fleet-1/\n");
  CHECK(prefix_of(a) == "fleet-1");
  auto b = config_with_prefix(a, "fleet-2");
  CHECK(prefix_of(b) == "fleet-2");
  CHECK(b.find("fleet-1") == std::string::npos);
  auto c = config_with_prefix(b, "");
  CHECK(prefix_of(c).empty());
  CHECK(c.find("dtparam=watchdog=on") != std::string::npos);
  CHECK(config_with_prefix(c, "fleet-2") == b);
}

TEST_CASE("merge_cmdline replaces keys, adds new words once") {
  CHECK(merge_cmdline("console=serial0,115200 root=PARTUUID=1 rootwait transparent_hugepage=always\n",
                      {"transparent_hugepage=madvise", "rootwait", "quiet"}) ==
        "console=serial0,115200 root=PARTUUID=1 rootwait transparent_hugepage=madvise quiet\n");
  CHECK(merge_cmdline("", {"a=1"}) == "a=1\n");
}

TEST_CASE("state round-trips through JSON, bad state files are named") {
  AgentState s;
  s.state = State::verify_failed;
  s.committed = {"", "6.1-old"};
  s.previous = Slot{"fleet-aaaaaaaaaaaa", "6.1-a"};
  s.target = Target{{"fleet-bbbbbbbbbbbb", "6.1-b"}, std::string(64, 'b'), "r7", BenchSpec{"3b", "/models/m.gguf", 4, 2.5}};
  s.boots_in_state = 2;
  s.note = "thp expected madvise, got never";
  s.last = Outcome{Phase::committed, "6.1-a", "ok", 5};
  s.sequence = 9;
  auto back = parse_state(state_to_json(s), "s.json");
  REQUIRE(back);
  CHECK(back->state == State::verify_failed);
  CHECK(back->target->rollout_id == "r7");
  REQUIRE(back->target->bench);
  CHECK(back->target->bench->shape == "3b");
  CHECK(back->target->bench->model == "/models/m.gguf");
  CHECK(back->target->bench->threads == 4);
  CHECK(back->target->bench->min_tokens_per_s == 2.5);
  CHECK(back->note == s.note);
  CHECK(back->last->phase == Phase::committed);
  CHECK(back->sequence == 9);
  auto bad = parse_state(R"({"state":"dancing","committed":{"name":"","release":"x"}})", "/var/lib/fleet-agent/state.json");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("/var/lib/fleet-agent/state.json: unknown state 'dancing'") != std::string::npos);
}

TEST_CASE("a state file whose names would become paths outside the board's slots is refused") {
  // A corrupt state file must not make boot-check remove /etc, "..", or an absolute path.
  const std::string key(64, 'c');
  struct Case {
    std::string json;
    const char* expect;
  } cases[] = {
      {R"({"state":"idle","committed":{"name":"../..","release":"6.1"}})", "slot name '../..'"},
      {R"({"state":"idle","committed":{"name":"","release":"../../etc"}})", "release '../../etc'"},
      {R"({"state":"idle","committed":{"name":"","release":"6.1"},"previous":{"name":"/boot","release":"6.1"}})",
       "slot name '/boot'"},
      {R"({"state":"tryboot","committed":{"name":"","release":"6.1"},"target":{"slot":{"name":"fleet-../../x","release":"6.2"},"build_key":")" +
           key + R"(","rollout_id":"r"}})",
       "slot name 'fleet-../../x'"},
      {R"({"state":"tryboot","committed":{"name":"","release":"6.1"},"target":{"slot":{"name":"mine","release":"6.2"},"build_key":")" +
           key + R"(","rollout_id":"r"}})",
       "slot name 'mine'"},
      {R"({"state":"tryboot","committed":{"name":"","release":"6.1"},"target":{"slot":{"name":"fleet-cccccccccccc","release":"/some/abs/path"},"build_key":")" +
           key + R"(","rollout_id":"r"}})",
       "release '/some/abs/path'"},
      {R"({"state":"tryboot","committed":{"name":"","release":"6.1"},"target":{"slot":{"name":"fleet-cccccccccccc","release":"6.2"},"build_key":"/../x","rollout_id":"r"}})",
       "build_key '/../x'"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto r = parse_state(c.json, "state.json");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find(c.expect) != std::string::npos);
  }
  CHECK(is_slot_name("fleet-0123456789ab"));
  CHECK_FALSE(is_slot_name("fleet-0123456789AB"));
  CHECK(is_slot_folder("my-slot"));
  CHECK(is_slot_folder("kernels/test"));  // a user's nested os_prefix
  CHECK_FALSE(is_slot_folder("../b"));
  CHECK_FALSE(is_slot_folder("/boot"));
}

TEST_CASE("the change between two measurements and its noise") {
  Measurement base{"6.12-old", "probe 1b, all threads", 5.0, 0.05, 29, 1};
  Measurement trial{"6.12-new", "probe 1b, all threads", 5.4, 0.05, 29, 2};
  auto c = compare(base, trial);
  CHECK(c.change == Approx(0.08));
  // 3 x sqrt(2) x 0.93 x 0.05 / sqrt(29)
  CHECK(c.noise == Approx(3 * std::sqrt(2.0) * 0.93 * 0.05 / std::sqrt(29.0)));
  CHECK(change_text(base, trial) == "+8.0% vs 6.12-old (5.00 -> 5.40 t/s)");
  // More tokens, less noise: 400 tokens bring a 5% spread to 1% of noise.
  base.tokens = trial.tokens = 400;
  CHECK(compare(base, trial).noise == Approx(0.00986).epsilon(0.01));
  // No spread known: no noise forgiven.
  base.spread = trial.spread = 0;
  CHECK(compare(base, trial).noise == 0);
  trial.tokens_per_s = 4.8;  // -4% against a 3% gate, nothing to forgive
  CHECK_FALSE(regression_check(base, trial, 0.03).pass);
  trial.tokens_per_s = 4.9;  // -2%
  CHECK(regression_check(base, trial, 0.03).pass);
  CHECK(regression_check(base, trial, 0.03).warning.empty());
}
