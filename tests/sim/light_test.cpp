// Light boards (sim/light.hpp): the kernel view fleet-sim writes is what the agent's verify
// reads, and a light rack is refused where sshd could not chroot into it.
#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>

#include "common/bootloader.hpp"
#include "common/fs.hpp"
#include "node-agent/verify/verify.hpp"
#include "sim/firmware.hpp"
#include "sim/light.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

// The kernel view written into a folder, read back by the agent as a light board reads it.
agent::Report verify_view(const Contract& shown, const Contract& checked, const std::string& cmdline_txt) {
  test::TempDir root("fleet-light-view");
  sim::light::KernelView v;
  v.contract = shown;
  v.bootloader = sim::bootloader_release(sim::k_default_release).value();
  v.memory_mb = 2048;
  v.cmdline = sim::kernel_cmdline(cmdline_txt, bootloader::cmdline_words(v.bootloader, v.memory_mb, "2c:cf:67:00:00:01"));
  v.boot_id = "4a1c0d7e-0000-4000-8000-000000000001";
  auto files = sim::light::kernel_files(v);
  REQUIRE(files);
  for (const auto& [rel, data] : *files) root.write(rel, data);
  return agent::evaluate(checked, agent::observe(root.path(), agent::Source::folder));
}

Contract tuned() {
  return parse_contract(R"({"kernel_release":"6.12.48-fleet","page_size":16384,"thp":"madvise","numa_emulation":true,)"
                        R"("hz":100,"tick":"NO_HZ_IDLE","headless":true})", "tuned").value();
}

}  // namespace

TEST_CASE("a light board's kernel view passes the agent's verify of the contract it was written from") {
  auto report = verify_view(tuned(), tuned(), "console=ttyAMA0");
  for (const auto& c : report.checks) UNSCOPED_INFO(c.property << ": expected " << c.expected << ", got " << c.actual << " (" << c.detail << ")");
  CHECK(report.ok());
  std::vector<std::string> properties;
  for (const auto& c : report.checks) properties.push_back(c.property);
  // Every property of the contract was read from the folder, none skipped.
  for (const char* p : {"kernel_release", "page_size", "thp", "hz", "tick", "headless", "bootloader"}) {
    CHECK(std::find(properties.begin(), properties.end(), p) != properties.end());
  }
  REQUIRE(report.memory);
  CHECK(report.memory->mem_total_kb == 2048 * 1024 - 51200);
}

TEST_CASE("a light board shows another kernel's properties, and verify sees each difference") {
  // The stock kernel: 4K pages, THP always, 250 Hz, periodic tick, a display.
  auto stock = parse_contract(R"({"kernel_release":"6.12.48-v8-16k","page_size":4096,"thp":"always","hz":250,)"
                              R"("tick":"HZ_PERIODIC","headless":false})", "stock").value();
  auto report = verify_view(stock, tuned(), "console=ttyAMA0");
  CHECK_FALSE(report.ok());
  std::map<std::string, std::string> actual;
  for (const auto& c : report.checks) {
    if (!c.pass) actual[c.property] = c.actual;
  }
  CHECK(actual["kernel_release"] == "6.12.48-v8-16k");
  CHECK(actual["page_size"] == "4096");
  CHECK(actual["thp"] == "always");
  CHECK(actual["hz"] == "250");
  CHECK(actual["tick"] == "HZ_PERIODIC");
  CHECK(actual["headless"] == "no");
}

TEST_CASE("NUMA emulation on a light board follows the bootloader's numa=fake") {
  // 2 GB: the bootloader asks for 4 nodes (bootloader::fake_numa_nodes), the kernel makes them.
  auto c = parse_contract(R"({"numa_nodes":4})", "four nodes").value();
  auto report = verify_view(tuned(), c, "console=ttyAMA0");
  for (const auto& k : report.checks) {
    if (k.property == "numa_nodes") CHECK(k.actual == "4");
  }
  CHECK(report.ok());
}

TEST_CASE("a light rack is refused under a folder others may write, naming that folder") {
  test::TempDir dir("fleet-light-path");  // under /tmp, which everyone may write
  auto r = sim::light::check_chroot_path(dir / "rack");
  REQUIRE_FALSE(r);
  // As root the folder is root's, and /tmp above it is the first that breaks the rule.
  if (::geteuid() == 0) CHECK_THAT(r.error().message, Catch::Contains("/tmp is owner 0, mode 1777"));
  // The nearest offender is named first: the group-writable folder, not /tmp above it.
  ::chmod(dir.path().c_str(), 0775);
  r = sim::light::check_chroot_path(dir / "rack");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains(dir.path().string() + " is owner"));
  CHECK(sim::light::check_chroot_path("/usr/share"));
}
