// The real target (label rpi5): the rpi5 bundle built from the Raspberry Pi kernel tree, the
// rpi5-qemu kernel booted the way a Pi 5 boots it (Cortex-A76, GICv2, one memory node, the
// bootloader's numa=fake=N) and verified, and one full update on a virtual board with a bad
// variant rolled back. The tree is FLEET_RPI_SOURCE; without it every test is skipped (77).
#include <cstdio>
#include <cstdlib>
#include <iostream>
#include <sstream>

#include "common/contract.hpp"
#include "sim/boot.hpp"
#include "sim/firmware.hpp"
#include "tests/e2e/board_rack.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

const std::filesystem::path k_rpi_bundles = FLEET_E2E_BUNDLES;

void require_tree() {
  const char* src = std::getenv("FLEET_RPI_SOURCE");
  if (src && *src) return;
  std::cout << "skipped: FLEET_RPI_SOURCE names no Raspberry Pi kernel tree (README: Building the rpi5 kernel)\n";
  std::exit(77);  // ctest's SKIP_RETURN_CODE
}

nlohmann::json check(const nlohmann::json& report, const std::string& property) {
  for (const auto& c : report["checks"])
    if (c["property"] == property) return c;
  FAIL("the report has no " << property);
  return {};
}

// A virtual Pi 5: four Cortex-A76, 2 GB (numa=fake=4, a published Pi 5 2 GB figure), one QEMU
// memory node, so every NUMA node comes from the bootloader and NUMA_EMU.
sim::BootOptions pi5(const std::string& bundle) {
  sim::BootOptions o;
  o.bundle = k_rpi_bundles / bundle;
  o.userland = {FLEET_ARM64_BUSYBOX, FLEET_AARCH64_AGENT};
  o.cpus = 4;
  o.memory_mb = 2048;
  o.numa_nodes = 1;
  o.timeout = 600s;
  return o;
}

nlohmann::json boot_report(const sim::BootOptions& o, sim::BootResult* out = nullptr) {
  auto r = sim::boot_and_verify(o, {});
  if (!r) FAIL(r.error().message);
  INFO(r->console.substr(r->console.size() > 4000 ? r->console.size() - 4000 : 0));
  REQUIRE_FALSE(r->timed_out);
  REQUIRE(r->verify.json);
  if (out) *out = *r;
  return nlohmann::json::parse(*r->verify.json);
}

std::string run(const std::string& command) {
  auto r = process::capture({{"sh", "-c", command}, {}, {}, 300s});
  REQUIRE(r);
  return *r;
}

}  // namespace

TEST_CASE("rpi5: the bundle holds what a Pi 5 boots: kernel_2712.img, the dtbs, all overlays, stripped modules") {
  require_tree();
  const auto dir = k_rpi_bundles / "rpi5";
  auto m = bundle::verify(dir);
  REQUIRE(m);
  CHECK(m->profile == "rpi5");
  CHECK(m->kernel_release.starts_with("6.12."));
  CHECK(m->kernel_release.ends_with("-v8-16k-fleet"));
  CHECK(m->image == "boot/kernel_2712.img");
  for (const char* f : {"boot/kernel_2712.img", "boot/bcm2712-rpi-5-b.dtb", "boot/bcm2712d0-rpi-5-b.dtb",
                        "boot/bcm2712-rpi-cm5-cm5io.dtb", "boot/overlays/overlay_map.dtb", "boot/overlays/README",
                        "boot/overlays/bcm2712d0.dtbo", "config", "contract.json"}) {
    INFO(f);
    CHECK(m->files.contains(f));
  }
  size_t modules = 0, overlays = 0;
  for (const auto& [path, e] : m->files) {
    if (path.ends_with(".ko") || path.ends_with(".ko.xz")) ++modules;
    if (path.starts_with("boot/overlays/") && path.ends_with(".dtbo")) ++overlays;
  }
  INFO("modules " << modules << ", overlays " << overlays);
  CHECK(modules > 1000);  // bcm2712_defconfig builds ~1,300 minus what headless drops
  CHECK(overlays > 200);
  // INSTALL_MOD_STRIP=1: not one module keeps debug sections. bcm2712_defconfig compresses
  // them (MODULE_COMPRESS_XZ): each is read back out of its .xz. Prints "modules with-debug".
  const auto mods = dir / "modules/lib/modules" / m->kernel_release;
  auto checked = run("t=$(mktemp -d); n=0; d=0; for f in $(find " + mods.string() +
                     " -name '*.ko' -o -name '*.ko.xz'); do case $f in *.xz) xz -dc \"$f\" > $t/m.ko; g=$t/m.ko;; "
                     "*) g=$f;; esac; n=$((n+1)); if aarch64-linux-gnu-readelf -S -W \"$g\" | grep -q '\\.debug_'; "
                     "then d=$((d+1)); fi; done; rm -rf $t; echo \"$n $d\"");
  INFO("modules read, modules with debug sections: " << checked);
  int read = 0, with_debug = -1;
  REQUIRE(std::sscanf(checked.c_str(), "%d %d", &read, &with_debug) == 2);
  CHECK(read == static_cast<int>(modules));
  CHECK(with_debug == 0);
  auto config = fs::read_file(dir / "config");
  REQUIRE(config);
  CHECK_THAT(*config, Catch::Contains("CONFIG_HZ=100\n") && Catch::Contains("CONFIG_NUMA_EMU=y\n") &&
                          Catch::Contains("CONFIG_TRANSPARENT_HUGEPAGE_MADVISE=y\n") &&
                          Catch::Contains("# CONFIG_DRM is not set\n") && Catch::Contains("CONFIG_ARM64_16K_PAGES=y\n"));
  auto contract = parse_contract(fs::read_file(dir / "contract.json").value(), "contract.json");
  REQUIRE(contract);
  CHECK(contract->numa_emulation == true);
  CHECK(contract->kernel_release == m->kernel_release);
}

TEST_CASE("rpi5-qemu differs from rpi5 only in what QEMU's virt machine needs (fleetctl kernel diff)") {
  require_tree();
  auto out = process::capture({{FLEETCTL, "kernel", "diff", "rpi5", "rpi5-qemu", "--json"}, {}, {}, 600s});
  REQUIRE(out);  // exit 0: nothing unexplained, rpi5's symbols unchanged
  auto j = nlohmann::json::parse(*out);
  INFO(j.dump(1));
  CHECK(j["unexplained"] == 0);
  CHECK(j["from_requested_changed"].empty());
  CHECK(j["from_requested_checked"].get<int>() > 10);
  // Requested: every symbol of the fragment that rpi5's own .config does not already have.
  auto fragment = fs::read_file(test::source_dir() / "kernel/fragments/qemu-virt-board.config");
  auto rpi5_config = fs::read_file(k_rpi_bundles / "rpi5/config");
  REQUIRE(fragment);
  REQUIRE(rpi5_config);
  int expected = 0;
  std::istringstream lines(*fragment);
  for (std::string line; std::getline(lines, line);) {
    if (line.starts_with("CONFIG_") && rpi5_config->find(line + "\n") == std::string::npos) ++expected;
  }
  CHECK(expected >= 5);
  CHECK(j["requested"].get<int>() == expected);
  for (const auto& c : j["changes"]) {
    if (c["why"] == "requested") CHECK_THAT(c["because"].get<std::string>(), Catch::Contains("qemu-virt-board.config"));
  }
}

TEST_CASE("rpi5-qemu boots as a Pi 5 boots: four nodes from the bootloader's numa=fake=4, every property verified") {
  require_tree();
  auto m = bundle::verify(k_rpi_bundles / "rpi5-qemu");
  REQUIRE(m);
  sim::BootResult r;
  auto report = boot_report(pi5("rpi5-qemu"), &r);
  INFO(report.dump(1) << "\ncmdline: " << r.cmdline);
  CHECK(report["ok"] == true);
  CHECK(*r.verify.exit_code == 0);
  CHECK_THAT(r.cmdline, Catch::Contains(" numa=fake=4 system_heap.max_order=0 "));
  CHECK(check(report, "numa_nodes")["expected"] == "4 (numa=fake=4)");
  CHECK(check(report, "numa_nodes")["actual"] == "4");
  CHECK(check(report, "kernel_release")["actual"] == m->kernel_release);
  CHECK(check(report, "page_size")["actual"] == "16384");
  CHECK(check(report, "thp")["actual"] == "madvise");
  CHECK(check(report, "hz")["actual"] == "100");
  CHECK(check(report, "tick")["actual"] == "NO_HZ_IDLE");
  CHECK(check(report, "headless")["actual"] == "yes");
  CHECK(check(report, "bootloader")["actual"] == "2025-03-10 (2bb2ae64)");
  CHECK(check(report, "bootloader")["warning"] == "");
}

TEST_CASE("rpi5-qemu under a bootloader older than NUMA emulation: one node, verified, with a warning") {
  require_tree();
  auto o = pi5("rpi5-qemu");
  o.bootloader = sim::bootloader_release("2024-05-13").value();
  sim::BootResult r;
  auto report = boot_report(o, &r);
  INFO(report.dump(1));
  CHECK(report["ok"] == true);
  CHECK_THAT(r.cmdline, !Catch::Contains("numa=fake"));
  CHECK(check(report, "numa_nodes")["actual"] == "1");
  CHECK_THAT(check(report, "numa_nodes")["warning"].get<std::string>(),
             Catch::Contains("predates NUMA emulation") && Catch::Contains("rpi-eeprom-update"));
  CHECK(check(report, "bootloader")["actual"] == "2024-05-13 (83b5e5e6)");
}

TEST_CASE("rpi5-qemu on a virtual board: install, tryboot, verify, commit, and a bad variant rolls back") {
  require_tree();
  test::RackSpec spec;
  spec.bundles = k_rpi_bundles;
  spec.updates = {"rpi5-qemu", "rpi5-qemu-thp-never"};
  spec.machine.cpus = 4;
  spec.machine.memory_mb = 2048;
  spec.machine.qemu_numa_nodes = 1;
  spec.update_timeout = 900s;  // ~1,300 modules hashed and copied over 9p under TCG
  test::Rack rack(spec);
  const std::string good = test::release_of("rpi5-qemu", k_rpi_bundles);
  {
    INFO("good update");
    auto st = rack.update("rpi5-qemu");
    INFO("agent state: " << st.dump() << "\nconsole:\n" << rack.console_tail());
    CHECK(st["last"]["phase"] == "COMMITTED");
    CHECK(st["committed"]["release"] == good);
    CHECK(rack.uname() == good);
    CHECK(rack.phases_for("r-rpi5-qemu", 3) == std::vector<std::string>{"INSTALLED", "TRYBOOT", "COMMITTED"});
    auto nodes = rack.ssh("cat /sys/devices/system/node/online; ls /lib/modules/" + good + "/kernel | head -3");
    REQUIRE(nodes);
    CHECK(nodes->starts_with("0-3\n"));
  }
  {
    INFO("a bad variant (THP never) fails its contract and rolls back");
    auto st = rack.update("rpi5-qemu-thp-never");
    INFO("agent state: " << st.dump() << "\nconsole:\n" << rack.console_tail());
    CHECK(st["last"]["phase"] == "ROLLED_BACK");
    CHECK_THAT(st["last"]["message"].get<std::string>(), Catch::Contains("thp expected madvise, got never"));
    CHECK(st["committed"]["release"] == good);
    CHECK(rack.uname() == good);
  }
}
