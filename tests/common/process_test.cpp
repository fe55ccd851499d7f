#include <catch2/catch.hpp>

#include "common/process.hpp"

using namespace fleet;

TEST_CASE("process: output lines and exit status") {
  std::vector<std::string> lines;
  auto r = process::run({{"sh", "-c", "echo one; echo two >&2; printf three; exit 3"}, {}, {}, {}},
                        [&](std::string_view l) { lines.emplace_back(l); });
  REQUIRE(r);
  CHECK(r->exit_code == 3);
  CHECK_FALSE(r->timed_out);
  CHECK(lines == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("process: arguments reach the program unparsed (no shell)") {
  auto out = process::capture({{"printf", "%s|", "a;b", "$(id)", "c d"}, {}, {}, {}});
  REQUIRE(out);
  CHECK(*out == "a;b|$(id)|c d|\n");
}

TEST_CASE("process: a timeout kills the process group and is reported as a timeout") {
  auto r = process::run({{"sh", "-c", "sleep 30 & sleep 30"}, {}, {}, std::chrono::milliseconds(200)}, {});
  REQUIRE(r);
  CHECK(r->timed_out);
  auto c = process::capture({{"sleep", "30"}, {}, {}, std::chrono::milliseconds(100)});
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::timeout);
}

TEST_CASE("process: a missing program is exit 127 with the reason") {
  auto c = process::capture({{"/nonexistent/program"}, {}, {}, {}});
  REQUIRE_FALSE(c);
  CHECK(c.error().code == Errc::process_failed);
  CHECK(c.error().message.find("cannot run /nonexistent/program") != std::string::npos);
}

TEST_CASE("process: env and cwd") {
  auto out = process::capture({{"sh", "-c", "echo $FLEET_X; pwd"}, "/tmp", {{"FLEET_X", "42"}}, {}});
  REQUIRE(out);
  CHECK(*out == "42\n/tmp\n");
}

TEST_CASE("process: render quotes what a shell would split") {
  CHECK(process::render({"make", "CC=ccache gcc", "it's"}) == "make 'CC=ccache gcc' 'it'\\''s'");
}
