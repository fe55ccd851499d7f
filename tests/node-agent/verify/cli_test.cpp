#include <zlib.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>
#include <sstream>

#include "proto/codec.hpp"
#include "proto/fleet.pb.h"
#include "node-agent/cli/cli.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

// A folder shaped like a board's /proc and /sys.
void write_board(const test::TempDir& root, const std::string& thp) {
  root.write("proc/self/smaps", "KernelPageSize:       16 kB\n");
  root.write("sys/kernel/mm/transparent_hugepage/enabled", thp);
  root.write("sys/devices/system/node/online", "0-1\n");
  root.write("proc/sys/kernel/osrelease", "6.1.192-fleet-qemu\n");
  root.write("proc/meminfo", "MemTotal: 1000 kB\nMemAvailable: 900 kB\n");
  gzFile gz = gzopen((root / "proc/config.gz").c_str(), "wb");
  std::string cfg = "CONFIG_HZ=100\nCONFIG_NO_HZ_IDLE=y\n";
  gzwrite(gz, cfg.data(), static_cast<unsigned>(cfg.size()));
  gzclose(gz);
}

int run(const std::vector<std::string>& args, std::string& out, std::string& err) {
  auto r = test::run_cli(agent::cli::run, args);
  out = r.out;
  err = r.err;
  return r.code;
}

const char* k_contract =
    R"({"kernel_release":"6.1.192-fleet-qemu","page_size":16384,"thp":"madvise","numa_nodes":2,"hz":100,"tick":"NO_HZ_IDLE","headless":true})";

}  // namespace

TEST_CASE("fleet-agent verify --root: exit 0 and a table when all pass") {
  test::TempDir root;
  write_board(root, "always [madvise] never\n");
  auto contract = root.write("contract.json", k_contract);
  std::string out, err;
  CHECK(run({"verify", "--contract", contract.string(), "--root", root.path().string()}, out, err) == 0);
  CHECK(out.find("verified: all 7 properties pass") != std::string::npos);
}

TEST_CASE("fleet-agent verify --json: exit 1 and THP named when THP differs") {
  test::TempDir root;
  write_board(root, "always madvise [never]\n");
  auto contract = root.write("contract.json", k_contract);
  std::string out, err;
  CHECK(run({"verify", "--json", "--contract", contract.string(), "--root", root.path().string()}, out, err) == 1);
  // One line (a virtual board's console carries it line by line), a fleet.v1.Verification.
  CHECK(out.find('\n') == out.size() - 1);
  auto v = wire::parse<fleet::v1::Verification>(out, "fleet-agent verify --json");
  REQUIRE(v);
  CHECK_FALSE(v->ok());
  int failed = 0;
  for (const auto& c : v->checks()) {
    if (!c.pass()) {
      ++failed;
      CHECK(c.property() == "thp");
      CHECK(c.actual() == "never");
    }
  }
  CHECK(failed == 1);
}

TEST_CASE("fleet-agent: usage errors exit 2 and say what is wrong") {
  test::TempDir root;
  std::string out, err;
  CHECK(run({"verify"}, out, err) == 2);
  CHECK(err.find("--contract FILE is required") != std::string::npos);
  CHECK(run({"verify", "--contract", (root / "missing.json").string()}, out, err) == 2);
  CHECK(err.find("missing.json") != std::string::npos);
  auto bad = root.write("bad.json", R"({"thp":"sometimes"})");
  CHECK(run({"verify", "--contract", bad.string()}, out, err) == 2);
  CHECK(err.find("'thp'") != std::string::npos);
  CHECK(run({"frobnicate"}, out, err) == 2);
  CHECK(err.find("unknown command 'frobnicate'") != std::string::npos);
  CHECK(run({"verify", "--help"}, out, err) == 0);
  CHECK(out.find("--contract FILE") != std::string::npos);
}
