#include <catch2/catch.hpp>

#include "controller/ssh/ssh.hpp"

using namespace fleet::ssh;

TEST_CASE("quote: every argument is one shell word, whatever it holds") {
  CHECK(quote("plain") == "'plain'");
  CHECK(quote("") == "''");
  CHECK(quote("it's") == "'it'\\''s'");
  CHECK(quote("$(reboot); `id` && rm -rf /") == "'$(reboot); `id` && rm -rf /'");
  CHECK(command_line({"fleet-agent", "install", "--bundle", "/var/tmp/a b"}) ==
        "'fleet-agent' 'install' '--bundle' '/var/tmp/a b'");
}
