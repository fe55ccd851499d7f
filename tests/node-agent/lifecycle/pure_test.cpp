#include <catch2/catch.hpp>

#include <cmath>
#include <cstdlib>
#include <filesystem>
#include <functional>
#include <optional>

#include "node-agent/bench/probe.hpp"
#include "node-agent/lifecycle/compare.hpp"

#include "node-agent/lifecycle/lifecycle.hpp"
#include "node-agent/lifecycle/system.hpp"
#include "tests/support/temp_dir.hpp"

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
  const std::string probe = "probe 1b (synthetic weights, avx2), all threads";
  Measurement base{"6.12-old", probe, 5.0, 0.05, 29, 1};
  Measurement trial{"6.12-new", probe, 5.4, 0.05, 29, 2};
  auto c = compare(base, trial);
  CHECK(c.change == Approx(0.08));
  // 3 x sqrt(2) x 0.93 x 0.05 / sqrt(29)
  CHECK(c.noise == Approx(3 * std::sqrt(2.0) * 0.93 * 0.05 / std::sqrt(29.0)));
  CHECK(change_text(base, trial) == "+8.0% vs 6.12-old (5.00 -> 5.40 t/s)");
  // More tokens, less noise: 400 tokens bring a 5% spread to 1% of noise.
  base.tokens = trial.tokens = 400;
  CHECK(compare(base, trial).noise == Approx(0.00986).epsilon(0.01));
  base.spread = trial.spread = 0.002;  // a quiet machine: 0.04% of noise
  trial.tokens_per_s = 4.8;            // -4% against a 3% gate
  CHECK_FALSE(regression_check(base, trial, 0.03).pass);
  trial.tokens_per_s = 4.9;  // -2%
  CHECK(regression_check(base, trial, 0.03).pass);
  CHECK(regression_check(base, trial, 0.03).warning.empty());
  // llama-bench's 3 repetitions: their errors count 2.2 times more.
  Measurement lb{"6.12-old", "llama-bench tg16 of /m.gguf, all threads", 5.0, 0.05, 3, 1};
  Measurement lt = lb;
  lt.release = "6.12-new";
  CHECK(compare(lb, lt).noise == Approx(3 * std::sqrt(2.0) * 2.2 * 0.05 / std::sqrt(3.0)));
}

TEST_CASE("the gate does not judge figures it cannot compare: it passes and says why") {
  const std::string probe = "probe 1b (synthetic weights, avx2), all threads";
  Measurement base{"6.12-old", probe, 5.0, 0.002, 400, 1, false, "model /m.gguf; llama-bench /b, sha256 1"};
  struct Case {
    const char* what;
    std::function<void(Measurement&)> change;
    const char* why;
  } cases[] = {
      {"another shape (auto chose by free memory)", [](Measurement& m) { m.key = "probe 3b (synthetic weights, avx2), all threads"; },
       "measured differently"},
      {"llama-bench against the probe", [](Measurement& m) { m.key = "llama-bench tg16 of /m.gguf, all threads"; },
       "measured differently"},
      {"another llama-bench binary, the same words", [](Measurement& m) { m.spec = "model /m.gguf; llama-bench /b, sha256 2"; },
       "measured differently: the committed kernel as model /m.gguf; llama-bench /b, sha256 1"},
      {"cut at its bound", [](Measurement& m) { m.cut_short = true; }, "cut at its time bound"},
      {"too few tokens for a spread", [](Measurement& m) { m.tokens = 3; }, "timed 3 tokens, too few"},
      {"no spread", [](Measurement& m) { m.spread = 0; }, "too few for a spread"},
  };
  for (const auto& c : cases) {
    INFO(c.what);
    Measurement trial = base;
    trial.release = "6.12-new";
    trial.tokens_per_s = 1.0;  // far slower: would fail if judged
    c.change(trial);
    auto k = regression_check(base, trial, 0.03);
    CHECK(k.pass);
    CHECK(k.actual == "not compared");
    CHECK_THAT(k.warning, Catch::Contains(c.why));
  }
  // The same spec, or one side without (kept before specs were), is judged.
  for (const char* spec : {"model /m.gguf; llama-bench /b, sha256 1", ""}) {
    Measurement trial = base;
    trial.tokens_per_s = 1.0;
    trial.spec = spec;
    CHECK_FALSE(regression_check(base, trial, 0.03).pass);
  }
}

TEST_CASE("token times: interpolated quartiles, no spread from too few") {
  using fleet::agent::bench::summarize;
  auto t = summarize({0.010, 0.012, 0.011, 0.013, 0.050, 0.011, 0.012, 0.010});
  // Sorted .010 .010 .011 .011 .012 .012 .013 .050: q1 at rank 1.75 (.01075), q3 at 5.25 (.01225).
  CHECK(t.spread == Approx((0.01225 - 0.01075) / 0.0115));
  CHECK(summarize({0.01, 0.02}).spread == 0);  // unknown, not zero noise
}

TEST_CASE("kept measurements read back checked, and one that does not is dropped, not fatal") {
  AgentState s;
  s.committed = {"fleet-aaaaaaaaaaaa", "6.1-a"};
  s.measured = Measurement{"6.1-a", "probe 1b (x), all threads", 5.5, 0.04, 30, 77, false, "probe 1b, all threads"};
  s.target = Target{{"fleet-bbbbbbbbbbbb", "6.1-b"}, std::string(64, 'b'), "r7", BenchSpec{"1b", "", 0, 0, 0, 0.03}};
  s.target->baseline = s.measured;
  s.state = State::installed;
  auto back = parse_state(state_to_json(s), "state.json");
  REQUIRE(back);
  REQUIRE(back->measured);
  CHECK(back->measured->tokens_per_s == 5.5);
  CHECK(back->measured->spec == "probe 1b, all threads");
  REQUIRE(back->target->baseline);
  CHECK(back->target->baseline->key == "probe 1b (x), all threads");
  CHECK(back->target->bench->max_regression == 0.03);
  // A bad figure (0, a release that is none) is dropped; the state still loads.
  auto text = state_to_json(s);
  const std::string good = "\"tokens_per_s\": 5.5";
  int replaced = 0;
  for (auto at = text.find(good); at != std::string::npos; at = text.find(good)) {
    text.replace(at, good.size(), "\"tokens_per_s\": 0");
    ++replaced;
  }
  REQUIRE(replaced == 2);  // the kept one and the baseline
  auto dropped = parse_state(text, "state.json");
  REQUIRE(dropped);
  CHECK_FALSE(dropped->measured);
  CHECK_FALSE(dropped->target->baseline);
  CHECK(dropped->target->baseline_note == "the saved baseline did not read back");
}

// How the real board would measure a request: for a model, the llama-bench binary on PATH by
// content (another build is another method), or the probe where there is none.
TEST_CASE("a model's method names the llama-bench binary that would measure it, by content") {
  fleet::test::TempDir dir;
  // PATH as it was when the test ends, however it ends (unset stays unset).
  struct PathGuard {
    std::optional<std::string> saved;
    PathGuard() {
      if (const char* p = std::getenv("PATH")) saved = p;
    }
    ~PathGuard() { saved ? ::setenv("PATH", saved->c_str(), 1) : ::unsetenv("PATH"); }
  } guard;
  ::setenv("PATH", (dir.path() / "bin").c_str(), 1);
  RealSystem system(dir.path());
  BenchSpec model;
  model.model = "/srv/m.gguf";
  BenchSpec shape;
  shape.shape = "1b";
  const std::string none = system.measure_method(model);
  CHECK(none.starts_with("no llama-bench, the probe (revision "));
  auto bin = dir.write("bin/llama-bench", "#!/bin/sh\necho one\n");
  std::filesystem::permissions(bin, std::filesystem::perms::owner_all);
  const std::string one = system.measure_method(model);
  CHECK(one.starts_with("llama-bench " + bin.string() + ", sha256 "));
  CHECK(one.find(", else the probe (revision ") != std::string::npos);
  dir.write("bin/llama-bench", "#!/bin/sh\necho two\n");
  std::filesystem::permissions(bin, std::filesystem::perms::owner_all);
  const std::string two = system.measure_method(model);
  CHECK(two.starts_with("llama-bench " + bin.string() + ", sha256 "));
  CHECK(two != one);
  CHECK(system.measure_method(shape).starts_with("revision "));  // a shape: the probe alone
}
