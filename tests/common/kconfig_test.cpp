#include <catch2/catch.hpp>

#include "common/kconfig.hpp"

using namespace fleet;

TEST_CASE("kconfig parse reads set, unset and string symbols with their lines") {
  auto entries = kconfig::parse(
      "#\n# Automatically generated\n#\nCONFIG_HZ_100=y\n# CONFIG_DRM is not set\n"
      "CONFIG_LOCALVERSION=\"-fleet\"\nCONFIG_HZ=100\n  CONFIG_INDENTED=m  \n# a comment CONFIG_X=y\n");
  REQUIRE(entries.size() == 5);
  CHECK(entries[0].symbol == "HZ_100");
  CHECK(entries[0].value == "y");
  CHECK(entries[0].line == 4);
  CHECK(entries[1].symbol == "DRM");
  CHECK(entries[1].value == "n");
  CHECK(entries[2].value == "\"-fleet\"");
  CHECK(entries[3].value == "100");
  CHECK(entries[4].symbol == "INDENTED");
  CHECK(entries[4].value == "m");
}

TEST_CASE("kconfig parse ignores malformed lines") {
  auto entries = kconfig::parse("CONFIG_=y\nCONFIG_A B=y\nCONFIG_NOEQ\n# CONFIG_ is not set\nCONFIG_OK=y");
  REQUIRE(entries.size() == 1);
  CHECK(entries[0].symbol == "OK");
}

TEST_CASE("kconfig map: later lines win, absent symbols read as n") {
  auto m = kconfig::to_map(kconfig::parse("CONFIG_A=y\nCONFIG_A=m\n"));
  CHECK(kconfig::value_of(m, "A") == "m");
  CHECK(kconfig::value_of(m, "MISSING") == "n");
}
