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
      {R"({"numa_nodes":2,"numa_nodes_min":2})", "one of numa_nodes, numa_nodes_min or numa_emulation"},
      {R"({"numa_nodes":2,"numa_emulation":true})", "one of numa_nodes, numa_nodes_min or numa_emulation"},
      {R"({"numa_emulation":"yes"})", "'numa_emulation'"},
      {R"({"tokens_per_second":3})", "unknown contract property 'tokens_per_second'"},
      // Found by tests/fuzz/contract_fuzz: integers past int's range were read wrapped
      // (4294967396 as 100, 4294967297 as 1) and accepted.
      {R"({"hz":4294967396})", "'hz'"},
      {R"({"numa_nodes":4294967297})", "'numa_nodes'"},
      {R"({"numa_nodes_min":-4294967295})", "'numa_nodes_min'"},
      {R"({"page_size":9223372036854775808})", "'page_size'"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto r = parse_contract(c.json, "bundle/contract.json");
    REQUIRE_FALSE(r);
    CHECK(r.error().message.find("bundle/contract.json") != std::string::npos);
    CHECK(r.error().message.find(c.expect) != std::string::npos);
  }
}

// Found by tests/fuzz/profile_fuzz: a profile's contract string holding a byte that is not
// UTF-8 made contract_to_json throw (nlohmann type_error 316) out of parse_profile.
TEST_CASE("contract: a string that is not UTF-8 is written as U+FFFD, then refused by name") {
  Contract c;
  c.tick = "NO_HZ\xff_IDLE";
  std::string json;
  REQUIRE_NOTHROW(json = contract_to_json(c));
  CHECK(json.find("NO_HZ\xef\xbf\xbd_IDLE") != std::string::npos);
  auto back = parse_contract(json, "bundle/contract.json");
  REQUIRE_FALSE(back);
  CHECK(back.error().message.find("bundle/contract.json: field 'tick'") != std::string::npos);
}

TEST_CASE("contract: numa_emulation round-trips, and false is kept as said") {
  Contract c;
  c.numa_emulation = true;
  auto back = parse_contract(contract_to_json(c), "x");
  REQUIRE(back);
  CHECK(back->numa_emulation == true);
  c.numa_emulation = false;
  c.numa_nodes = 2;  // false does not count against the one-NUMA-rule
  back = parse_contract(contract_to_json(c), "x");
  REQUIRE(back);
  CHECK(back->numa_emulation == false);
  CHECK(back->numa_nodes == 2);
}
