#include <catch2/catch.hpp>

#include "common/process.hpp"
#include "sim/cpio.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

TEST_CASE("cpio newc: headers are 4-byte aligned and end with the trailer") {
  auto a = sim::cpio_newc({{"bin", 0040755, ""}, {"bin/x", 0100755, "abc"}});
  CHECK(a.substr(0, 6) == "070701");
  CHECK(a.size() % 4 == 0);
  CHECK(a.find("TRAILER!!!") != std::string::npos);
  CHECK(a.find("abc") != std::string::npos);
}

TEST_CASE("cpio newc: GNU cpio reads back what we wrote") {
  test::TempDir dir;
  auto archive = dir.write("a.cpio", sim::cpio_newc({{"d", 0040755, ""},
                                                     {"d/file", 0100644, "hello\n"},
                                                     {"d/odd", 0100755, "12345"},
                                                     {"link", 0120777, "d/file"}}));
  auto list = process::capture({{"cpio", "-itv", "--quiet", "-F", archive.string()}, {}, {}, std::chrono::seconds(10)});
  REQUIRE(list);
  CHECK_THAT(*list, Catch::Contains("d/file"));
  CHECK_THAT(*list, Catch::Contains("d/odd"));
  CHECK_THAT(*list, Catch::Contains("link -> d/file"));
  auto out = process::capture({{"sh", "-c", "cpio -i --quiet -d -F a.cpio && cat d/file d/odd"}, dir.path(), {}, std::chrono::seconds(10)});
  REQUIRE(out);
  CHECK(*out == "hello\n12345\n");
}
