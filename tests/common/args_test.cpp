#include <array>
#include <catch2/catch.hpp>

#include "common/args.hpp"

using namespace fleet;

namespace {
const std::array k_options = {
    args::Option{"profile", args::Takes::value, "NAME", "profile"},
    args::Option{"json", args::Takes::nothing, "", "json"},
};
}

TEST_CASE("args: values, inline values, flags and positionals") {
  std::vector<std::string> argv = {"--profile", "rpi5", "--json", "extra", "--profile=qemu-virt"};
  auto p = args::parse(argv, k_options);
  REQUIRE(p);
  CHECK(p->value("profile") == "qemu-virt");
  CHECK(p->flag("json"));
  CHECK(p->positional == std::vector<std::string>{"extra"});
  CHECK_FALSE(p->value("missing"));
}

TEST_CASE("args: errors name the option") {
  std::vector<std::string> unknown = {"--proflie", "x"};
  auto p = args::parse(unknown, k_options);
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find("--proflie") != std::string::npos);

  std::vector<std::string> missing = {"--profile"};
  p = args::parse(missing, k_options);
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find("needs a value") != std::string::npos);

  std::vector<std::string> flag_value = {"--json=yes"};
  p = args::parse(flag_value, k_options);
  REQUIRE_FALSE(p);
  CHECK(p.error().message.find("takes no value") != std::string::npos);
}

TEST_CASE("args: -- ends options") {
  std::vector<std::string> argv = {"--", "--json"};
  auto p = args::parse(argv, k_options);
  REQUIRE(p);
  CHECK_FALSE(p->flag("json"));
  CHECK(p->positional == std::vector<std::string>{"--json"});
}

TEST_CASE("args: help lists every option") {
  auto h = args::help(k_options);
  CHECK(h.find("--profile NAME") != std::string::npos);
  CHECK(h.find("--json") != std::string::npos);
}

TEST_CASE("args: a one-letter option is written -n, other single-dash words stay positional") {
  const std::array options = {args::Option{"n", args::Takes::value, "N", "how many"},
                              args::Option{"json", args::Takes::nothing, "", "json"}};
  std::vector<std::string> argv = {"-n", "5", "-x", "-", "--json"};
  auto p = args::parse(argv, options);
  REQUIRE(p);
  CHECK(p->value("n") == "5");
  CHECK(p->positional == std::vector<std::string>{"-x", "-"});
  CHECK_THAT(args::help(options), Catch::Contains("  -n N "));
  auto missing = args::parse(std::vector<std::string>{"-n"}, options);
  REQUIRE_FALSE(missing);
  CHECK_THAT(missing.error().message, Catch::Contains("needs a value"));
}

TEST_CASE("args: whole-number options are checked against their range, naming the option") {
  const std::array options = {args::Option{"threads", args::Takes::value, "N", "threads"},
                              args::Option{"n", args::Takes::value, "N", "boards"}};
  auto p = args::parse(std::vector<std::string>{"--threads", "4", "-n", "3x"}, options);
  REQUIRE(p);
  auto threads = args::int_value(*p, "threads", 1, 8);
  REQUIRE(threads);
  CHECK(*threads == std::optional<int>{4});
  auto big = args::int_value(*p, "threads", 1, 2);
  REQUIRE_FALSE(big);
  CHECK(big.error().message == "--threads must be a whole number from 1 to 2, got '4'");
  auto bad = args::int_value(*p, "n", 1, 64);
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message == "-n must be a whole number from 1 to 64, got '3x'");
  auto absent = args::int_value(args::Parsed{}, "threads", 1, 8);
  REQUIRE(absent);
  CHECK_FALSE(absent->has_value());
}
