#include <catch2/catch.hpp>

#include "controller/rollout/rollout.hpp"

TEST_CASE("dry run: a board that trusts keys would refuse an unsigned bundle or one signed by another key") {
  using fleet::rollout::signature_refusal;
  CHECK(signature_refusal({}, "", "").empty());          // trusts nothing: anything installs
  CHECK(signature_refusal({}, "aaaa", "").empty());
  CHECK(signature_refusal({"aaaa"}, "aaaa", "").empty());
  CHECK(signature_refusal({}, "bbbb", "bbbb").empty());  // this rollout adds the signer's key
  CHECK_THAT(signature_refusal({"aaaa"}, "", ""), Catch::Contains("trusts key aaaa and the bundle is not signed"));
  CHECK_THAT(signature_refusal({"aaaa"}, "cccc", ""), Catch::Contains("signed by key cccc"));
  CHECK_THAT(signature_refusal({"aaaa"}, "", "bbbb"), Catch::Contains("trusts key aaaa, bbbb"));
}

TEST_CASE("fleet_group and fleet_group_max_down: read, defaulted, refused with the host and its place") {
  using fleet::rollout::board_group;
  fleet::inventory::Host h;
  h.name = "pi-3";
  h.where = "inventory.yml:7:5";
  auto none = board_group(h);
  REQUIRE(none);
  CHECK(none->first.empty());
  h.vars["fleet_group"] = "rpc-a";
  auto one = board_group(h);
  REQUIRE(one);
  CHECK(one->first == "rpc-a");
  CHECK(one->second == 1);
  h.vars["fleet_group_max_down"] = "2";
  CHECK(board_group(h)->second == 2);
  for (const char* bad : {"0", "two", "-1", "", "1.5", "99999999"}) {
    INFO(bad);
    h.vars["fleet_group_max_down"] = bad;
    auto r = board_group(h);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("inventory.yml:7:5: host pi-3: fleet_group_max_down"));
  }
  h.vars.erase("fleet_group");
  h.vars["fleet_group_max_down"] = "2";
  REQUIRE_FALSE(board_group(h));
  CHECK_THAT(board_group(h).error().message, Catch::Contains("without fleet_group"));
}
