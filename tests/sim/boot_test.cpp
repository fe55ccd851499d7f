#include <catch2/catch.hpp>

#include "sim/boot.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet::sim;

TEST_CASE("parse_verify_console finds the report between the markers, ignoring kernel lines") {
  auto v = parse_verify_console(
      "[    0.5] Run /init as init process\r\nFLEET-VERIFY-BEGIN\r\n[    0.6] random: crng init done\r\n"
      "{\"checks\":[],\"ok\":true}\r\nFLEET-VERIFY-EXIT 0\r\nFLEET-VERIFY-END\r\nreboot: Power down\r\n");
  REQUIRE(v.json);
  CHECK(*v.json == "{\"checks\":[],\"ok\":true}");
  CHECK(v.exit_code == 0);
}

TEST_CASE("parse_verify_console: nothing when the board never got there") {
  auto v = parse_verify_console("Kernel panic - not syncing: VFS: Unable to mount root fs\n{\"x\":1}\n");
  CHECK_FALSE(v.json);
  CHECK_FALSE(v.exit_code);
}

TEST_CASE("verify_initramfs names the missing piece") {
  fleet::test::TempDir dir;
  auto r = verify_initramfs({dir / "no-busybox", dir / "no-agent"}, "{}");
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("arm64-userland.sh"));
}
