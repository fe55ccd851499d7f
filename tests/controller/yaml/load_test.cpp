#include "controller/yaml/load.hpp"

#include <catch2/catch.hpp>

using namespace fleet;

namespace {

const yaml::Where k_where{"t.yml"};

Result<YAML::Node> load(const std::string& text, yaml::Budget budget = yaml::k_budget) {
  return yaml::load(text, k_where, {.budget = budget});
}

}  // namespace

TEST_CASE("the alias budget counts an alias as its anchor's nodes, each time it is reached") {
  // &a is a list and its two items: 3 nodes. Each *a brings 3 more.
  const std::string text = "a: &a [x, y]\nb: [*a, *a]\nc: *a\n";
  CHECK(load(text, {9, 64}));
  auto over = load(text, {8, 64});
  REQUIRE_FALSE(over);
  CHECK(over.error().code == Errc::invalid_input);
  CHECK(over.error().message == "t.yml:3:4: the document expands past 8 nodes through YAML aliases");
  // Nodes written out are not budgeted: they cost what the text costs.
  CHECK(load("[a, b, c, d, e, f, g, h, i, j]", {1, 64}));
}

TEST_CASE("depth counts levels, an alias's included") {
  CHECK(load("a: {b: [c]}", {0, 4}));  // map, map, list, scalar
  auto deep = load("a: {b: [c]}", {0, 3});
  REQUIRE_FALSE(deep);
  CHECK(deep.error().message == "t.yml:1:9: the document nests deeper than 3 levels");
  CHECK(load("a: &a [[x]]\nb: *a\n", {10, 4}));
  auto through = load("a: &a [[x]]\nb: [*a]\n", {10, 4});
  REQUIRE_FALSE(through);
  CHECK(through.error().message == "t.yml:2:5: the document nests deeper than 4 levels through YAML aliases");
}

TEST_CASE("a key written twice is refused, however it is spelled") {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"a: 1\nb: 2\na: 3\n", "t.yml:3:1: key 'a' is defined twice in this mapping (first at line 1)"},
      {"a: 1\n'a': 2\n", "t.yml:2:1: key 'a' is defined twice in this mapping (first at line 1)"},
      {"&k a: 1\n*k : 2\n", "t.yml:2:1: key 'a' is defined twice in this mapping (first at line 1)"},
      {"m: {x: 1, y: 2, x: 3}\n", "t.yml:1:17: key 'x' is defined twice in this mapping (first at line 1)"},
      {"- {x: 1}\n- {x: 2, x: 3}\n", "t.yml:2:10: key 'x' is defined twice"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    auto r = load(c.yaml);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_input);
    CHECK_THAT(r.error().message, Catch::Contains(c.expect));
  }
  // The same key in two mappings, and a list of maps with the same keys, are fine.
  CHECK(load("a: {x: 1}\nb: {x: 1}\nc: [{x: 1}, {x: 2}]\n"));
}

TEST_CASE("a key that is a list or a map is refused") {
  for (const char* text : {"? [a]\n: b\n", "{[a]: b}\n", "? {a: 1}\n: b\n", "x: &l [a]\ny: {*l : b}\n"}) {
    INFO(text);
    auto r = load(text);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("a key that is a list or a map (keys are plain values)"));
  }
  CHECK(load("x: &s a\ny: {*s : b}\n"));  // an alias of a scalar is a plain key
}

TEST_CASE("a repeated key is named by the key that holds its mapping") {
  constexpr yaml::KeyNoun nouns[] = {{"", "group"}, {"hosts", "host"}};
  auto named = [&](const char* text) {
    auto r = yaml::load(text, k_where, {.key_noun = "thing", .key_nouns = nouns});
    REQUIRE_FALSE(r);
    return r.error().message;
  };
  CHECK(named("a:\na:\n") == "t.yml:2:1: group 'a' is defined twice in this mapping (first at line 1)");
  CHECK(named("g: {hosts: {p: , p: }}") == "t.yml:1:18: host 'p' is defined twice in this mapping (first at line 1)");
  CHECK(named("g: {vars: {p: , p: }}") == "t.yml:1:17: thing 'p' is defined twice in this mapping (first at line 1)");
}

TEST_CASE("parse errors are Errc::parse and name the place") {
  auto r = load("a: [1, 2\n");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::parse);
  CHECK_THAT(r.error().message, Catch::StartsWith("t.yml:"));
  auto alias = load("a: *nowhere\n");
  REQUIRE_FALSE(alias);
  CHECK(alias.error().code == Errc::parse);
}

TEST_CASE("yaml-cpp's own depth guard is reported as depth, not \"bad file\"") {
  // A budget deeper than yaml-cpp's 500 levels: its DeepRecursion surfaces, with a clear message.
  auto r = load(std::string(600, '[') + std::string(600, ']'), {10, 1000});
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::invalid_input);
  CHECK_THAT(r.error().message, Catch::Contains("the document nests deeper than"));
}
