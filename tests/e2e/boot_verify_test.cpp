#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "proto/codec.hpp"
#include "proto/fleet.pb.h"
#include "common/bundle.hpp"
#include "sim/boot.hpp"
#include "sim/firmware.hpp"

using namespace fleet;

namespace {

sim::BootOptions board(std::vector<std::string> extra = {}) {
  sim::BootOptions o;
  o.bundle = FLEET_E2E_BUNDLE;
  o.userland = {FLEET_ARM64_BUSYBOX, FLEET_AARCH64_AGENT};
  o.extra_cmdline = std::move(extra);
  o.numa_nodes = 2;
  o.timeout = std::chrono::seconds(300);
  return o;
}

nlohmann::json check(const nlohmann::json& report, const std::string& property) {
  for (const auto& c : report["checks"])
    if (c["property"] == property) return c;
  FAIL("the report has no " << property);
  return {};
}

sim::BootResult boot(const sim::BootOptions& o) {
  auto r = sim::boot_and_verify(o, {});
  if (!r) FAIL(r.error().message);
  INFO(r->console);
  REQUIRE_FALSE(r->timed_out);
  REQUIRE(r->verify.json);
  REQUIRE(r->verify.exit_code);
  return *r;
}

}  // namespace

TEST_CASE("the built qemu-virt bundle is complete and its contract names the release") {
  auto m = bundle::verify(FLEET_E2E_BUNDLE);
  REQUIRE(m);
  CHECK(m->profile == "qemu-virt");
  CHECK(m->kernel_release.ends_with("-fleet-qemu"));
  CHECK(m->files.contains("boot/kernel_2712.img"));
  CHECK(m->files.contains("config"));
  CHECK(m->files.contains("modules/lib/modules/" + m->kernel_release + "/kernel/drivers/net/dummy.ko"));
}

TEST_CASE("the tuned kernel boots in QEMU and fleet-agent verifies every property") {
  auto m = bundle::verify(FLEET_E2E_BUNDLE);
  REQUIRE(m);
  auto r = boot(board());
  INFO(*r.verify.json);
  auto report = nlohmann::json::parse(*r.verify.json);
  CHECK(*r.verify.exit_code == 0);
  CHECK(report["ok"] == true);
  CHECK(check(report, "page_size")["actual"] == "16384");
  CHECK(check(report, "thp")["actual"] == "madvise");
  CHECK(check(report, "numa_nodes")["actual"] == "2");
  CHECK(check(report, "hz")["actual"] == "100");
  CHECK(check(report, "tick")["actual"] == "NO_HZ_IDLE");
  CHECK(check(report, "kernel_release")["actual"] == m->kernel_release);
  CHECK(check(report, "headless")["actual"] == "yes");
  // Read as the controller reads it (64-bit counts are strings in the JSON mapping).
  auto verification = fleet::wire::parse<fleet::v1::Verification>(*r.verify.json, "fleet-agent verify --json");
  REQUIRE(verification);
  CHECK(verification->ok());
  CHECK(verification->memory().mem_total_kb() > 512 * 1024);
  // The firmware emulator's part: the bootloader's node in the device tree, read by the agent
  // through the real kernel, and the words a Pi 5 bootloader adds for 1 GB (Debian's 6.1 has no
  // NUMA emulation: its two nodes are QEMU's).
  CHECK(check(report, "bootloader")["actual"] == "2025-03-10 (2bb2ae64)");
  CHECK(check(report, "bootloader")["warning"] == "");
  CHECK_THAT(r.cmdline, Catch::Contains("numa_policy=interleave") && Catch::Contains(" numa=fake=2 ") &&
                            Catch::Contains("system_heap.max_order=0"));
}

TEST_CASE("the same kernel with transparent_hugepage=never fails verification, naming THP") {
  auto r = boot(board({"transparent_hugepage=never"}));
  INFO(*r.verify.json);
  auto report = nlohmann::json::parse(*r.verify.json);
  CHECK(*r.verify.exit_code == 1);
  CHECK(report["ok"] == false);
  auto thp = check(report, "thp");
  CHECK(thp["pass"] == false);
  CHECK(thp["actual"] == "never");
  for (const auto& c : report["checks"]) {
    if (c["property"] != "thp") CHECK(c["pass"] == true);
  }
}

TEST_CASE("a board with one NUMA node fails the numa_nodes property, an old bootloader is reported with a warning") {
  auto o = board();
  o.numa_nodes = 1;
  o.bootloader = sim::bootloader_release("2024-04-20").value();
  auto r = boot(o);
  auto report = nlohmann::json::parse(*r.verify.json);
  CHECK(*r.verify.exit_code == 1);
  CHECK(check(report, "numa_nodes")["actual"] == "1");
  CHECK(check(report, "numa_nodes")["pass"] == false);
  CHECK(check(report, "bootloader")["actual"] == "2024-04-20");
  CHECK_THAT(check(report, "bootloader")["warning"].get<std::string>(), Catch::Contains("predates NUMA emulation"));
  CHECK_THAT(r.cmdline, !Catch::Contains("numa=fake"));
}
