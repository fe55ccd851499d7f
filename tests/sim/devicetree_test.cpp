#include <catch2/catch.hpp>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "sim/devicetree.hpp"
#include "sim/firmware.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::sim;
using namespace std::chrono_literals;

TEST_CASE("the bootloader node in dts: u32 cells, the version string, this boot's tryboot flag") {
  auto info = bootloader_release("2024-05-13").value();
  auto node = bootloader_node(info, true);
  CHECK_THAT(node, Catch::Contains("build-timestamp = <0x66422e75>;"));
  CHECK_THAT(node, Catch::Contains("version = \"83b5e5e61a70a93caee65cbd6aea77bdd485e5b0\";"));
  CHECK_THAT(node, Catch::Contains("capabilities = <0x7f>;"));
  CHECK_THAT(node, Catch::Contains("tryboot = <0x1>;"));
  CHECK_THAT(bootloader_node(info, false), Catch::Contains("tryboot = <0x0>;"));
  bootloader::Info bare;
  CHECK_THAT(bootloader_node(bare, false), !Catch::Contains("version") && !Catch::Contains("build-timestamp"));
}

TEST_CASE("the node goes last into /chosen, after its properties, a tree without /chosen is an error") {
  const std::string dts = "/dts-v1/;\n/ {\n\tchosen {\n\t\tbootargs = \"x\";\n\t};\n};\n";
  auto out = add_to_chosen(dts, "\t\tbootloader {\n\t\t};\n");
  REQUIRE(out);
  CHECK(*out == "/dts-v1/;\n/ {\n\tchosen {\n\t\tbootargs = \"x\";\n\t\tbootloader {\n\t\t};\n\t};\n};\n");
  CHECK_FALSE(add_to_chosen("/ {\n};\n", "x"));
}
