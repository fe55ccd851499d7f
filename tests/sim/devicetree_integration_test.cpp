// The board's device tree made the real way: QEMU dumps its own for the machine, dtc adds
// the bootloader node and compiles it; dtc reads it back.
#include <catch2/catch.hpp>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "sim/devicetree.hpp"
#include "sim/firmware.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::sim;
using namespace std::chrono_literals;

TEST_CASE("make_board_dtb: QEMU's tree for this machine with the bootloader's node, as dtc reads it back") {
  test::TempDir dir{"fleet-dtb"};
  // QEMU loads a kernel before it dumps the tree; any file of the right size will do.
  dir.write("Image", std::string(64 * 1024, '\0'));
  QemuSpec spec;
  spec.kernel = dir / "Image";
  spec.append = "console=ttyAMA0 numa=fake=4";
  spec.cpus = 4;
  spec.memory_mb = 2048;
  spec.numa_nodes = 1;
  auto info = bootloader_release("2025-03-10").value();
  auto made = make_board_dtb(spec, info, true, dir / "board.dtb");
  if (!made) FAIL(made.error().message);
  auto dts = process::capture({{"dtc", "-q", "-I", "dtb", "-O", "dts", (dir / "board.dtb").string()}, {}, {}, 30s});
  REQUIRE(dts);
  CHECK_THAT(*dts, Catch::Contains("bootloader {"));
  CHECK_THAT(*dts, Catch::Contains("build-timestamp = <0x67cf1d0d>;"));
  CHECK_THAT(*dts, Catch::Contains("tryboot = <0x01>;") || Catch::Contains("tryboot = <0x1>;"));
  CHECK_THAT(*dts, Catch::Contains("bootargs = \"console=ttyAMA0 numa=fake=4\";"));
  CHECK_THAT(*dts, Catch::Contains("arm,cortex-a76"));
  CHECK_THAT(*dts, Catch::Contains("arm,cortex-a15-gic"));  // the GICv2 binding, as on a Pi 5's GIC-400
  CHECK_THAT(*dts, !Catch::Contains("numa-node-id"));          // one node: NUMA only from numa=fake
}
