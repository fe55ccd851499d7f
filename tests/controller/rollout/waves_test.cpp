#include <catch2/catch.hpp>

#include "controller/rollout/waves.hpp"

using namespace fleet::rollout;

namespace {
std::vector<std::size_t> waves(std::size_t n, const char* serial) {
  auto s = parse_serial(serial);
  REQUIRE(s);
  return plan_waves(n, *s);
}
using V = std::vector<std::size_t>;
}  // namespace

TEST_CASE("waves: counts, percentages, lists, the last step repeats") {
  CHECK(waves(10, "1") == V(10, 1));
  CHECK(waves(10, "1,5,25%") == V{1, 5, 2, 2});
  CHECK(waves(100, "1,5,25%") == V{1, 5, 25, 25, 25, 19});
  CHECK(waves(3, "1,100%") == V{1, 2});
  CHECK(waves(7, "50%") == V{3, 3, 1});
  CHECK(waves(5, "3") == V{3, 2});
}

TEST_CASE("waves: tiny fleets never get an empty wave") {
  CHECK(waves(1, "25%") == V{1});
  CHECK(waves(3, "10%") == V{1, 1, 1});  // 10% of 3 rounds to 0: at least one board
  CHECK(waves(2, "1,5") == V{1, 1});
  CHECK(waves(0, "1").empty());
  CHECK(plan_waves(4, {}) == V{4});
}

TEST_CASE("serial: bad steps are named") {
  for (const char* bad : {"", "0", "-1", "x", "1,,2", "101%", "5%%", "1.5"}) {
    INFO(bad);
    auto s = parse_serial(bad);
    REQUIRE_FALSE(s);
    CHECK(s.error().message.find("--serial") != std::string::npos);
  }
}

TEST_CASE("max-fail must be exceeded, not equalled, 100% never stops") {
  auto pct = [](const char* t) {
    auto m = parse_max_fail(t);
    REQUIRE(m);
    return *m;
  };
  CHECK(exceeds(pct("49%"), 2, 4));        // 50% > 49%: stop (Ansible's example)
  CHECK_FALSE(exceeds(pct("50%"), 2, 4));  // equal: go on
  CHECK_FALSE(exceeds(pct("10%"), 0, 4));
  CHECK(exceeds(pct("0%"), 1, 10));
  CHECK_FALSE(exceeds(pct("100%"), 4, 4));  // ansible#76915: a wave where all fail must not stop a 100% rollout
  CHECK(exceeds(pct("99%"), 4, 4));
  CHECK(exceeds(pct("2"), 3, 10));
  CHECK_FALSE(exceeds(pct("2"), 2, 10));
  for (const char* bad : {"", "x", "-1", "101%", "1.5%"}) {
    INFO(bad);
    CHECK_FALSE(parse_max_fail(bad));
  }
}
