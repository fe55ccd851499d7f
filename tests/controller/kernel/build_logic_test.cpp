#include <catch2/catch.hpp>

#include "controller/kernel/build.hpp"

using namespace fleet::kernel;

TEST_CASE("kbuild_step recognises kbuild's quiet lines only") {
  CHECK(kbuild_step("  CC      kernel/fork.o").value() == "CC      kernel/fork.o");
  CHECK(kbuild_step("  LD [M]  drivers/net/dummy.ko").value() == "LD [M]  drivers/net/dummy.ko");
  CHECK(kbuild_step("  HOSTCC  scripts/basic/fixdep").has_value());
  CHECK_FALSE(kbuild_step("make[1]: Entering directory '/x'"));
  CHECK_FALSE(kbuild_step("kernel/fork.c:12: warning: unused"));
  CHECK_FALSE(kbuild_step("  "));
  CHECK_FALSE(kbuild_step("  cc lower case"));
}

TEST_CASE("build_key changes with every input and only with them") {
  std::vector<std::pair<std::string, std::string>> frags = {{"fragments/memory.config", "CONFIG_NUMA=y\n"}};
  auto base = build_key("tarball sha256 aa", "name: x", frags, "gcc 12");
  CHECK(base == build_key("tarball sha256 aa", "name: x", frags, "gcc 12"));
  CHECK(base != build_key("tarball sha256 ab", "name: x", frags, "gcc 12"));
  CHECK(base != build_key("tarball sha256 aa", "name: y", frags, "gcc 12"));
  CHECK(base != build_key("tarball sha256 aa", "name: x", {{"fragments/memory.config", "CONFIG_NUMA=n\n"}}, "gcc 12"));
  CHECK(base != build_key("tarball sha256 aa", "name: x", frags, "gcc 13"));
  CHECK(base.size() == 64);
}
