#include "controller/rollout/bench_vars.hpp"

#include <catch2/catch.hpp>

#include "common/fs.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using Args = std::vector<std::string>;

namespace {
inventory::Host host(const std::string& yaml, const std::string& name) {
  auto inv = inventory::parse_inventory(yaml, "rack.yml");
  REQUIRE(inv);
  const auto* h = inv->find(name);
  REQUIRE(h);
  return *h;
}
}  // namespace

TEST_CASE("board classes choose what each board measures, host vars win") {
  const std::string yaml = R"(all:
  children:
    small:
      vars:
        fleet_bench: 1b
        fleet_min_tokens_per_s: 6.5
      hosts:
        pi-1:
        pi-2:
          fleet_bench_threads: 3
          fleet_bench_max_seconds: 20
    big:
      vars:
        fleet_model: /srv/models/llama-2-7b.Q4_0.gguf
      hosts:
        pi-3:
    plain:
      hosts:
        pi-4:
        pi-5:
          fleet_bench: none
)";
  CHECK(*rollout::bench_install_args(host(yaml, "pi-1")) == Args{"--bench", "1b", "--min-tokens-per-s", "6.5"});
  CHECK(*rollout::bench_install_args(host(yaml, "pi-2")) ==
        Args{"--bench", "1b", "--bench-threads", "3", "--min-tokens-per-s", "6.5", "--bench-max-seconds", "20"});
  CHECK(*rollout::bench_install_args(host(yaml, "pi-3")) == Args{"--model", "/srv/models/llama-2-7b.Q4_0.gguf"});
  CHECK(*rollout::bench_install_args(host(yaml, "pi-4")) == Args{"--bench", "auto"});  // measured by default
  CHECK(rollout::bench_install_args(host(yaml, "pi-5"))->empty());
}

TEST_CASE("a wrong measurement variable names the board, where it is and the variable") {
  auto check = [](const std::string& vars, const std::string& want) {
    const std::string yaml = "all:\n  hosts:\n    pi-9:\n" + vars;
    auto r = rollout::bench_install_args(host(yaml, "pi-9"));
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_input);
    CHECK_THAT(r.error().message, Catch::StartsWith("board pi-9 (rack.yml:3:"));
    CHECK_THAT(r.error().message, Catch::Contains(want));
  };
  check("      fleet_bench: 70b\n", "fleet_bench '70b' is not a model shape (7b, 3b, 1b, 110m, 15m, auto or none)");
  check("      fleet_model: models/x.gguf\n", "must be an absolute path on the board");
  check("      fleet_model: \"/m/x.gguf\\n--bench 7b\"\n", "holds a control character");
  check("      fleet_model: /m/my model.gguf\n", "holds a space");
  check("      fleet_bench: none\n      fleet_min_tokens_per_s: 2\n", "needs a measurement");
  // parse_inventory refuses bad numbers at the line of the value (inventory_test.cpp);
  // bench_install_args checks them again where they become options, on a Host built here.
  auto check_host = [](const std::string& var, const std::string& value, const std::string& want) {
    inventory::Host h;
    h.name = "pi-9";
    h.where = "rack.yml:3:5";
    h.vars[var] = value;
    auto r = rollout::bench_install_args(h);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_input);
    CHECK_THAT(r.error().message, Catch::StartsWith("board pi-9 (rack.yml:3:"));
    CHECK_THAT(r.error().message, Catch::Contains(want));
  };
  check_host("fleet_min_tokens_per_s", "fast", "fleet_min_tokens_per_s 'fast' is not a rate");
  check_host("fleet_bench_max_seconds", "0", "is not a number of seconds from 1 to 240");
  check_host("fleet_bench_max_seconds", "600", "is not a number of seconds from 1 to 240");
  check_host("fleet_max_regression", "0%", "above 0 and below 100");
  check_host("fleet_max_regression", "3x", "above 0 and below 100");
  inventory::Host gated;
  gated.name = "pi-9";
  gated.vars["fleet_max_regression"] = "3%";
  CHECK(*rollout::bench_install_args(gated) == Args{"--bench", "auto", "--max-regression", "3"});
  check_host("fleet_min_tokens_per_s", "-1", "is not a rate");
  check_host("fleet_min_tokens_per_s", "nan", "is not a rate");
  check_host("fleet_bench_threads", "0", "fleet_bench_threads '0' is not a thread count");
}

TEST_CASE("the example inventory's measurement variables are valid") {
  auto text = fs::read_file(test::source_dir() / "inventory/example.yml");
  REQUIRE(text);
  auto inv = inventory::parse_inventory(*text, "inventory/example.yml");
  REQUIRE(inv);
  REQUIRE(inv->hosts.size() == 4);
  for (const auto& h : inv->hosts) {
    INFO(h.name);
    auto args = rollout::bench_install_args(h);
    REQUIRE(args);
    CHECK(std::find(args->begin(), args->end(), "--min-tokens-per-s") != args->end());
  }
  CHECK(*rollout::bench_install_args(*inv->find("pi-b1")) ==
        Args{"--model", "/srv/models/llama-2-7b.Q4_0.gguf", "--bench-threads", "3", "--min-tokens-per-s", "1.8"});
}
