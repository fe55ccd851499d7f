#include <catch2/catch.hpp>

#include "common/fs.hpp"
#include "controller/inventory/inventory.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::inventory;

namespace {

// An Ansible YAML inventory as Ansible's documentation writes them.
const char* k_ansible = R"(all:
  vars:
    ansible_user: pi
    threads: 4
  hosts:
    lonely:
      ansible_host: 10.0.0.9
  children:
    rack1:
      vars:
        model_path: /models/llama-3b.gguf
      hosts:
        pi-1:
          ansible_host: 127.0.0.1
          ansible_port: 22301
        pi-2:
          ansible_host: 127.0.0.1
          ansible_port: 22302
          threads: 3
    canary:
      hosts:
        pi-1:
      vars:
        model_path: /models/tiny.gguf
    edge:
      children:
        rack1:
)";

std::vector<std::string> names(const std::vector<const Host*>& hosts) {
  std::vector<std::string> out;
  for (auto* h : hosts) out.push_back(h->name);
  return out;
}

}  // namespace

TEST_CASE("an Ansible YAML inventory loads with Ansible's variable precedence") {
  auto inv = parse_inventory(k_ansible, "hosts.yml");
  REQUIRE(inv);
  REQUIRE(inv->hosts.size() == 3);
  auto* pi1 = inv->find("pi-1");
  REQUIRE(pi1);
  CHECK(pi1->address == "127.0.0.1");
  CHECK(pi1->port == 22301);
  CHECK(pi1->user == "pi");
  CHECK(pi1->vars.at("threads") == "4");
  // canary and rack1 are both depth 1: sorted by name, rack1 wins over canary.
  CHECK(pi1->vars.at("model_path") == "/models/llama-3b.gguf");
  CHECK(pi1->where == "hosts.yml:13:9");
  auto* pi2 = inv->find("pi-2");
  CHECK(pi2->vars.at("threads") == "3");  // host vars beat group vars
  CHECK(pi2->port == 22302);
  auto* lonely = inv->find("lonely");
  CHECK(lonely->address == "10.0.0.9");
  CHECK(lonely->port == 22);
  CHECK(std::find(pi2->groups.begin(), pi2->groups.end(), "edge") != pi2->groups.end());
}

TEST_CASE("host patterns: groups, globs, unions, intersections, exclusions") {
  auto inv = parse_inventory(k_ansible, "hosts.yml");
  REQUIRE(inv);
  auto sel = [&](const char* p) {
    auto r = select(*inv, p);
    REQUIRE(r);
    return names(*r);
  };
  using V = std::vector<std::string>;
  CHECK(sel("all") == V{"lonely", "pi-1", "pi-2"});
  CHECK(sel("rack1") == V{"pi-1", "pi-2"});
  CHECK(sel("edge") == V{"pi-1", "pi-2"});
  CHECK(sel("pi-*") == V{"pi-1", "pi-2"});
  CHECK(sel("lonely:canary") == V{"lonely", "pi-1"});
  CHECK(sel("rack1:!canary") == V{"pi-2"});
  CHECK(sel("rack1:&canary") == V{"pi-1"});
  CHECK(sel("!canary") == V{"lonely", "pi-2"});
  auto none = select(*inv, "rack9");
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message, Catch::Contains("'rack9' matches no host or group"));
}

TEST_CASE("inventory errors name file, line and column") {
  struct Case {
    const char* yaml;
    const char* expect;
  } cases[] = {
      {"all:\n  hosts:\n    pi-1:\n      ansible_port: twenty\n", "hosts.yml:3:5: host 'pi-1': port 'twenty' is not a TCP port"},
      {"all:\n  hosts:\n    pi-1:\n      ansible_port: 70000\n", "is not a TCP port"},
      {"all:\n  hostz:\n    pi-1:\n", "hosts.yml:2:3: unknown key 'hostz' in group 'all'"},
      {"all:\n  hosts:\n    - pi-1\n", "hosts.yml:3:5: hosts of group 'all' must be a map"},
      {"all:\n  hosts:\n    pi-1:\n      vars: {a: [1]}\n", "variable 'vars' of host 'pi-1' must be a plain value"},
      {"all:\n  hosts:\n    'pi;rm -rf /':\n", "is not a usable host name"},
      {"all:\n  hosts:\n    pi-1:\n      ansible_host: '1.2.3.4; reboot'\n", "address '1.2.3.4; reboot' is not usable"},
      {"a:\n  children:\n    b:\n      children:\n        a:\n", "group 'a' contains itself"},
      // The loop is only in the merged groups (each definition alone has none): it overflowed
      // the stack (the crash tests/fuzz/inventory_fuzz is there to find).
      {"a:\n  children:\n    b:\nb:\n  children:\n    a:\n  hosts:\n    h:\n",
       "hosts.yml: group 'a' contains itself through its children (a -> b -> a)"},
      {"x:\n  children:\n    all:\n  hosts:\n    h:\n",
       "group 'all' contains itself through its children (all -> x -> all)"},
      {"all:\n  hosts: {}\n", "no hosts"},
      {"all: [\n", "hosts.yml:"},
      {"- just a list\n", "an inventory is a YAML map"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    auto inv = parse_inventory(c.yaml, "hosts.yml");
    REQUIRE_FALSE(inv);
    CHECK_THAT(inv.error().message, Catch::Contains(c.expect));
  }
}

TEST_CASE("the example inventories in inventory/ load") {
  auto dir = test::source_dir() / "inventory";
  int loaded = 0;
  for (const auto& e : std::filesystem::directory_iterator(dir)) {
    if (e.path().extension() != ".yml" && e.path().extension() != ".yaml") continue;
    INFO(e.path());
    auto text = fs::read_file(e.path());
    REQUIRE(text);
    CHECK(parse_inventory(*text, e.path().string()));
    ++loaded;
  }
  CHECK(loaded >= 1);
}

// 40 levels of diamonds (g0 has children a0 and b0, both have child g1, ...): 2^40 paths from
// the top. Host h's groups were collected once per path, so this never finished; each group
// is now walked once.
TEST_CASE("groups shared by many parents are walked once, not once per path") {
  std::string yaml;
  const int levels = 40;
  for (int i = 0; i < levels; ++i) {
    const std::string n = std::to_string(i), next = "g" + std::to_string(i + 1);
    yaml += "g" + n + ":\n  children:\n    a" + n + ":\n    b" + n + ":\n";
    yaml += "a" + n + ":\n  children:\n    " + next + ":\n";
    yaml += "b" + n + ":\n  children:\n    " + next + ":\n";
  }
  yaml += "g" + std::to_string(levels) + ":\n  hosts:\n    h:\n";
  auto inv = parse_inventory(yaml, "diamonds.yml");
  REQUIRE(inv);
  const Host* h = inv->find("h");
  REQUIRE(h);
  CHECK(h->groups.size() == 1 + 3 * levels + 1);  // all, every g, a and b, and the last g
  CHECK(h->groups.front() == "all");
}
