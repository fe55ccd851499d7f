#include <catch2/catch.hpp>

#include "common/contract.hpp"

using namespace fleet;

TEST_CASE("contract: round trip through JSON") {
  Contract c;
  c.kernel_release = "6.1.192-fleet-qemu";
  c.page_size = 16384;
  c.thp = "madvise";
  c.numa_nodes_min = 2;
  c.hz = 100;
  c.tick = "NO_HZ_IDLE";
  c.headless = true;
  auto back = parse_contract(contract_to_json(c), "x.json");
  REQUIRE(back);
  CHECK(back->kernel_release == c.kernel_release);
  CHECK(back->page_size == 16384);
  CHECK(back->numa_nodes_min == 2);
  CHECK_FALSE(back->numa_nodes);
  CHECK(back->headless == true);
}

TEST_CASE("contract: bad fields are refused with the file and field named") {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {"[1]", "JSON object"},
      {"{", "not valid JSON"},
      {R"({"thp":"sometimes"})", "'thp'"},
      {R"({"page_size":-4})", "'page_size'"},
      {R"({"tick":"NO_HZ"})", "'tick'"},
      {R"({"headless":"yes"})", "'headless'"},
      {R"({"numa_nodes":0})", "'numa_nodes'"},
      {R"({"numa_nodes":2,"numa_nodes_min":2})", "not both"},
      {R"({"tokens_per_second":3})", "unknown contract property 'tokens_per_second'"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto r = parse_contract(c.json, "bundle/contract.json");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("bundle/contract.json") != std::string::npos);
    CHECK(r.error().message.find(c.expect) != std::string::npos);
  }
}
