#include <catch2/catch.hpp>

#include "controller/rollout/rollout.hpp"

#include <sstream>
#include <thread>

#include "controller/store/store.hpp"
#include "tests/support/temp_dir.hpp"

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

TEST_CASE("after the verdicts, the rollout waits for each agent's report of its own and names those that did not come") {
  using namespace std::chrono_literals;
  using fleet::rollout::ReportDue;
  fleet::test::TempDir dir{"fleet-await"};
  auto store = std::move(*fleet::store::Store::open(dir / "fleet.db"));
  auto accept = [&](const std::string& board, const std::string& rollout, std::uint64_t seq) {
    fleet::store::ReportRow r;
    r.board = board;
    r.rollout_id = rollout;
    r.sequence = seq;
    r.phase = "COMMITTED";
    REQUIRE(store->accept_report(r).value_or(false));
  };
  accept("pi-1", "r1", 7);
  accept("pi-2", "r1", 6);  // an earlier report: its verdict (7) is still on the way
  accept("pi-3", "r0", 9);  // the verdict of another rollout does not count

  SECTION("all there: no wait, nothing said") {
    std::ostringstream out;
    auto missing = fleet::rollout::await_reports(*store, "r1", {{"pi-1", 7}}, 10s, out);
    REQUIRE(missing);
    CHECK(missing->empty());
    CHECK(out.str().empty());
  }
  SECTION("missing ones are waited for, up to the limit, then named") {
    std::ostringstream out;
    auto t0 = std::chrono::steady_clock::now();
    auto missing = fleet::rollout::await_reports(*store, "r1", {{"pi-1", 7}, {"pi-2", 7}, {"pi-3", 9}}, 300ms, out, 50ms);
    CHECK(std::chrono::steady_clock::now() - t0 >= 250ms);
    REQUIRE(missing);
    REQUIRE(missing->size() == 2);
    CHECK((*missing)[0].board == "pi-2");
    CHECK((*missing)[1].board == "pi-3");
    CHECK_THAT(out.str(), Catch::Contains("waiting up to 300 ms for what 2 boards reported of the verdict (pi-2, pi-3)"));
    CHECK_THAT(out.str(), Catch::Contains("pi-2: its report 7 (the verdict"));
    CHECK_THAT(out.str(), Catch::Contains("pi-3: its report 9"));
    CHECK_THAT(out.str(), !Catch::Contains("pi-1:"));
  }
  SECTION("a report that lands while it waits ends the wait") {
    std::ostringstream out;
    std::thread late([&] {
      std::this_thread::sleep_for(200ms);
      accept("pi-2", "r1", 7);
    });
    auto t0 = std::chrono::steady_clock::now();
    auto missing = fleet::rollout::await_reports(*store, "r1", {{"pi-1", 7}, {"pi-2", 7}}, 20s, out, 20ms);
    late.join();
    REQUIRE(missing);
    CHECK(missing->empty());
    CHECK(std::chrono::steady_clock::now() - t0 < 10s);
    CHECK_THAT(out.str(), Catch::Contains("waiting up to 20 s for what 1 board reported of the verdict (pi-2)"));
  }
}
