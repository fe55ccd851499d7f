#include <catch2/catch.hpp>

#include "controller/model/push.hpp"

using namespace fleet;

TEST_CASE("an installed fleet-model is taken only at fleetctl's own version") {
  CHECK(model::check_tool_version("fleet-model 0.1.0 (commit 0123456789ab)\n", "0.1.0"));
  CHECK(model::check_tool_version("fleet-model 0.1.0\n", "0.1.0"));
  CHECK(model::check_tool_version("  fleet-model 0.1.0 (commit x)  \nmore\n", "0.1.0"));
  for (const char* said : {"fleet-model 0.1.01 (commit x)", "fleet-model 0.1", "fleet-model 0.0.1 (commit x)", "fleet-agent 0.1.0",
                           "", "0.1.0", "fleet-model 0.1.0-rc1"}) {
    INFO(said);
    auto r = model::check_tool_version(said, "0.1.0");
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::unsupported);
    CHECK_THAT(r.error().message, Catch::Contains("this fleetctl is 0.1.0: install the fleet-model package 0.1.0 there"));
  }
  // What it said is quoted, and bounded.
  auto r = model::check_tool_version("fleet-model 9.9.9 (commit abc)\n", "0.1.0");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::StartsWith("its fleet-model says 'fleet-model 9.9.9 (commit abc)'"));
  auto long_line = model::check_tool_version(std::string(500, 'x'), "0.1.0");
  REQUIRE_FALSE(long_line);
  CHECK(long_line.error().message.size() < 250);
}

TEST_CASE("rates: bytes with decimal and binary units, and errors that name the option") {
  CHECK(model::parse_bytes("250000", "--max-rate") == 250000);
  CHECK(model::parse_bytes("100M", "--max-rate") == 100'000'000);
  CHECK(model::parse_bytes("1.5G", "--max-rate") == 1'500'000'000);
  CHECK(model::parse_bytes("1Mi", "--max-rate") == 1024 * 1024);
  for (const char* bad : {"", "fast", "-1M", "12Q"}) {
    INFO(bad);
    auto r = model::parse_bytes(bad, "--board-max-rate");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("--board-max-rate"));
  }
}
