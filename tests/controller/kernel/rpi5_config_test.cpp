// --config-only on the Raspberry Pi tree that FLEET_RPI_SOURCE names: the merged, checked
// .config of rpi5 and rpi5-qemu in seconds, in the normal suite whenever the tree is here.
// Without the tree each test exits 77 (skipped) and says why.
#include <catch2/catch.hpp>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/kconfig.hpp"
#include "common/process.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {
void require_tree() {
  const char* src = std::getenv("FLEET_RPI_SOURCE");
  if (src && *src) return;
  std::cout << "skipped: FLEET_RPI_SOURCE names no Raspberry Pi kernel tree (README: Building the rpi5 kernel)\n";
  std::exit(77);
}
}  // namespace

TEST_CASE("fleetctl kernel build --config-only on the rpi5 tree prints every check and writes OUT.config") {
  require_tree();
  test::TempDir dir{"fleet-config-only"};
  for (const char* profile : {"rpi5", "rpi5-qemu"}) {
    INFO(profile);
    const auto out = dir / profile;
    auto r = process::capture({{FLEETCTL, "kernel", "build", "--profile", profile, "--config-only", "--json", "--out",
                                out.string()},
                               {}, {}, 600s});
    REQUIRE(r);
    // The output holds the progress lines (stderr) too; the result is the line of JSON.
    const auto at = r->rfind("\n{\"");
    auto j = nlohmann::json::parse(r->substr(at == std::string::npos ? 0 : at + 1), nullptr, false);
    REQUIRE(j.is_object());
    CHECK(j["ok"] == true);
    CHECK(j["contract_conflicts"].empty());
    CHECK(j["symbols"].size() >= 14);  // rpi5: 11 fragment lines and 3 settings; rpi5-qemu 10 more
    for (const auto& s : j["symbols"]) CHECK(s["ok"] == true);
    // No bundle, only the .config beside where it would go.
    CHECK_FALSE(std::filesystem::exists(out / "manifest.json"));
    auto config = fs::read_file(out.string() + ".config");
    REQUIRE(config);
    auto map = kconfig::to_map(kconfig::parse(*config));
    CHECK(map["HZ"] == "100");
    CHECK(map["NUMA_EMU"] == "y");
    CHECK(map["ARM64_16K_PAGES"] == "y");
    CHECK(kconfig::value_of(map, "DRM") == "n");
    CHECK(kconfig::value_of(map, "PCI_HOST_GENERIC") == (std::string(profile) == "rpi5" ? "n" : "y"));
  }
}
