#include <catch2/catch.hpp>

#include "common/fs.hpp"
#include "controller/inventory/inventory.hpp"
#include "tests/support/inventory_shapes.hpp"
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

using fleet::test::alias_bomb;

struct Case {
  std::string yaml;
  std::string expect;
};

void check_refused(const std::vector<Case>& cases) {
  for (const auto& c : cases) {
    INFO(c.yaml);
    auto inv = parse_inventory(c.yaml, "hosts.yml");
    REQUIRE_FALSE(inv);
    CHECK_THAT(inv.error().message, Catch::Contains(c.expect));
  }
}

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
      {"all:\n  hosts:\n    pi-1:\n      ansible_port: twenty\n",
       "hosts.yml:4:21: variable 'ansible_port' of host 'pi-1': 'twenty' is not a TCP port"},
      {"all:\n  hosts:\n    pi-1:\n      ansible_port: 70000\n", "is not a TCP port"},
      {"all:\n  hostz:\n    pi-1:\n", "hosts.yml:2:3: unknown key 'hostz' in group 'all'"},
      {"all:\n  hosts:\n    - pi-1\n", "hosts.yml:3:5: hosts of group 'all' must be a map"},
      {"all:\n  hosts:\n    pi-1:\n      vars: {a: [1]}\n", "variable 'vars' of host 'pi-1' must be a plain value"},
      {"all:\n  hosts:\n    'pi;rm -rf /':\n", "is not a usable host name"},
      {"all:\n  hosts:\n    \"pi\\n-1\":\n", "hosts.yml:3:5: host name holds a control character"},
      {"all:\n  hosts:\n    pi-1:\n      ansible_host: '1.2.3.4; reboot'\n", "address '1.2.3.4; reboot' is not usable"},
      {"a:\n  children:\n    b:\n      children:\n        a:\n", "group 'a' contains itself"},
      // The loop is only in the merged groups (each definition alone has none): it overflowed
      // the stack (the crash tests/fuzz/inventory_fuzz is there to find).
      {"a:\n  children:\n    b:\nb:\n  children:\n    a:\n  hosts:\n    h:\n",
       "hosts.yml:1:1: group 'a' contains itself through its children (a > b > a)"},
      {"x:\n  children:\n    all:\n  hosts:\n    h:\n",
       "group 'all' contains itself through its children (all > x > all)"},
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

TEST_CASE("a key written twice in one mapping is refused naming both lines") {
  check_refused({
      {"all:\n  hosts:\n    pi-1:\n    pi-2:\n    pi-1:\n",
       "hosts.yml:5:5: host 'pi-1' is defined twice in this mapping (first at line 3)"},
      {"all:\n  hosts:\n    pi-1:\n      ansible_host: 10.0.0.1\n    'pi-1':\n      ansible_host: 10.0.0.2\n",
       "hosts.yml:5:5: host 'pi-1' is defined twice in this mapping (first at line 3)"},
      {"all: {hosts: {pi-1: , \"pi-1\": }}\n",
       "hosts.yml:1:23: host 'pi-1' is defined twice in this mapping (first at line 1)"},
      {"all:\n  children:\n    rack1:\n      hosts: {pi-1: }\n    rack1:\n      hosts: {pi-2: }\n",
       "hosts.yml:5:5: group 'rack1' is defined twice in this mapping (first at line 3)"},
      {"rack1:\n  hosts: {pi-1: }\nrack1:\n  hosts: {pi-2: }\n",
       "hosts.yml:3:1: group 'rack1' is defined twice in this mapping (first at line 1)"},
      {"all:\n  vars:\n    fleet_bench: 3b\n    fleet_bench: 1b\n  hosts: {pi-1: }\n",
       "hosts.yml:4:5: variable 'fleet_bench' is defined twice in this mapping (first at line 3)"},
      {"all:\n  hosts:\n    pi-1:\n      ansible_port: 22\n      ansible_port: 2222\n",
       "hosts.yml:5:7: key 'ansible_port' is defined twice in this mapping (first at line 4)"},
      {"all:\n  hosts: {pi-1: }\n  hosts: {pi-2: }\n",
       "hosts.yml:3:3: key 'hosts' is defined twice in this mapping (first at line 2)"},
      // The same host in two groups is two mappings: allowed (k_ansible has pi-1 in rack1 and canary).
  });
}

TEST_CASE("YAML aliases are expanded within a budget of nodes and levels") {
  std::string deep_alias = "all:\n  hosts: {pi-1: }\n  vars:\n    a0: &a0 x\n";
  for (int i = 1; i <= 70; ++i) {
    deep_alias += "    a" + std::to_string(i) + ": &a" + std::to_string(i) + " [*a" + std::to_string(i - 1) + "]\n";
  }
  std::string deep_block = "all:\n";
  for (int i = 1; i <= 70; ++i) deep_block += std::string(2 * i, ' ') + "k:\n";
  std::string long_chain = "all:\n  hosts: {pi-1: }\n  children:\n";
  for (int i = 0; i < 70; ++i) {
    long_chain += "    g" + std::to_string(i) + ": {children: {g" + std::to_string(i + 1) + ": }}\n";
  }
  check_refused({
      // Level 4 reaches 10^4 nodes through aliases; the refusal names the alias that passes the budget.
      {alias_bomb(4), "hosts.yml:15:23: the document expands past 10000 nodes through YAML aliases"},
      {alias_bomb(9), "hosts.yml:15:23: the document expands past 10000 nodes through YAML aliases"},
      {"all: &a\n  children:\n    x: *a\n", "hosts.yml:3:8: an alias inside its own anchor"},
      {deep_alias, "hosts.yml:65:16: the document nests deeper than 64 levels through YAML aliases"},
      {"all: " + std::string(70, '[') + std::string(70, ']'),
       "hosts.yml:1:69: the document nests deeper than 64 levels"},
      // yaml-cpp's own guard (500 levels) only says "bad file"; this one comes first.
      {"all: " + std::string(100000, '[') + std::string(100000, ']'),
       "hosts.yml:1:69: the document nests deeper than 64 levels"},
      // Unclosed, yaml-cpp reads the brackets as a flow mapping whose key is a list, and its
      // columns drift: refused, at line 1, without a crash.
      {"all: " + std::string(100000, '['), "hosts.yml:1:"},
      {deep_block, "hosts.yml:64:"},
      // Without an alias: names join groups, so the chain is in the graph, not in the YAML.
      {long_chain, "groups nest deeper than 64 levels through their children"},
      {"all:\n  hosts: {pi-1: }\n  children:\n    a:\n      children: {b: }\n    b:\n      children: {a: }\n",
       "hosts.yml:4:5: group 'a' contains itself through its children (a > b > a)"},
  });
}

TEST_CASE("aliases within the budget load as Ansible reads them") {
  auto inv = parse_inventory(
      "all:\n  children:\n    rack1:\n      vars: &pi5 {fleet_bench: 3b, fleet_bench_threads: 4}\n      hosts: {pi-1: "
      "}\n"
      "    rack2:\n      vars: *pi5\n      hosts: {pi-2: }\n",
      "hosts.yml");
  REQUIRE(inv);
  CHECK(inv->find("pi-2")->vars.at("fleet_bench") == "3b");
  CHECK(inv->find("pi-2")->vars.at("fleet_bench_threads") == "4");
  // Three levels of the bomb are 1,000 nodes through aliases: within the budget.
  auto small = parse_inventory(alias_bomb(3), "hosts.yml");
  REQUIRE(small);
  CHECK(small->groups.size() == 35);  // all, l0-l3, and ten groups per level
}

TEST_CASE("groups reached by many paths are resolved once each") {
  // Two groups per level, both parents of both below: 2^30 paths to the last level.
  std::string t = "all:\n  children:\n";
  for (int i = 0; i < 30; ++i) {
    for (const char* side : {"a", "b"}) {
      t += "    g" + std::to_string(i) + side + ": {children: {g" + std::to_string(i + 1) + "a: , g" +
           std::to_string(i + 1) + "b: }}\n";
    }
  }
  t += "    g30a: {hosts: {pi-1: }}\n    g30b: {hosts: {pi-2: }}\n";
  auto inv = parse_inventory(t, "hosts.yml");
  REQUIRE(inv);
  CHECK(inv->find("pi-1")->groups.size() == 1 + 30 * 2 + 1);  // all, every g0-g29, and g30a
}

TEST_CASE("numeric variables are finite and in range, refused at the line of the value") {
  auto host_var = [](const std::string& var, const std::string& value) {
    return "all:\n  hosts:\n    pi-1:\n      " + var + ": " + value + "\n";
  };
  check_refused({
      {"all:\n  vars:\n    fleet_min_tokens_per_s: nan\n  hosts: {pi-1: }\n",
       "hosts.yml:3:29: variable 'fleet_min_tokens_per_s' of group 'all': 'nan' is not a rate in tokens per second"},
      {host_var("fleet_min_tokens_per_s", ".nan"), "hosts.yml:4:31: variable 'fleet_min_tokens_per_s' of host 'pi-1'"},
      {host_var("fleet_min_tokens_per_s", "inf"),
       "hosts.yml:4:31: variable 'fleet_min_tokens_per_s' of host 'pi-1': 'inf'"},
      {host_var("fleet_min_tokens_per_s", "-1"),
       "hosts.yml:4:31: variable 'fleet_min_tokens_per_s' of host 'pi-1': '-1'"},
      {host_var("fleet_min_tokens_per_s", "1e7"),
       "hosts.yml:4:31: variable 'fleet_min_tokens_per_s' of host 'pi-1': '1e7'"},
      {host_var("fleet_min_tokens_per_s", "2.5x"),
       "hosts.yml:4:31: variable 'fleet_min_tokens_per_s' of host 'pi-1': '2.5x'"},
      {host_var("fleet_bench_threads", "0"),
       "hosts.yml:4:28: variable 'fleet_bench_threads' of host 'pi-1': '0' is not a thread count"},
      {host_var("fleet_bench_threads", "2000"),
       "hosts.yml:4:28: variable 'fleet_bench_threads' of host 'pi-1': '2000'"},
      {host_var("fleet_bench_threads", "4.5"), "hosts.yml:4:28: variable 'fleet_bench_threads' of host 'pi-1': '4.5'"},
      {host_var("fleet_bench_threads", "-4"), "hosts.yml:4:28: variable 'fleet_bench_threads' of host 'pi-1': '-4'"},
      {host_var("fleet_bench_threads", "99999999999999999999"), "hosts.yml:4:28: variable 'fleet_bench_threads'"},
      {host_var("ansible_port", "0"), "hosts.yml:4:21: variable 'ansible_port' of host 'pi-1': '0' is not a TCP port"},
      {host_var("ansible_port", "65536"), "hosts.yml:4:21: variable 'ansible_port' of host 'pi-1': '65536'"},
      {host_var("ansible_port", "22.0"), "hosts.yml:4:21: variable 'ansible_port' of host 'pi-1': '22.0'"},
      {host_var("ansible_ssh_port", "-22"), "hosts.yml:4:25: variable 'ansible_ssh_port' of host 'pi-1': '-22'"},
      {host_var("port", "99999"), "hosts.yml:4:13: variable 'port' of host 'pi-1': '99999'"},
      // A bad group value is refused even where every host overrides it.
      {"all:\n  vars:\n    fleet_bench_threads: 0\n  hosts:\n    pi-1:\n      fleet_bench_threads: 4\n",
       "hosts.yml:3:26: variable 'fleet_bench_threads' of group 'all': '0'"},
  });
  auto ok = parse_inventory(
      "all:\n  vars:\n    fleet_min_tokens_per_s: 2.5\n    fleet_bench_threads: 4\n  hosts:\n    pi-1:\n"
      "      fleet_min_tokens_per_s: 0\n      ansible_port: 2222\n    pi-2:\n      fleet_min_tokens_per_s:\n",
      "hosts.yml");
  REQUIRE(ok);
  CHECK(ok->find("pi-1")->port == 2222);
  CHECK(ok->find("pi-1")->vars.at("fleet_min_tokens_per_s") == "0");
  CHECK(ok->find("pi-2")->vars.at("fleet_min_tokens_per_s").empty());  // empty: not set
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

// 30 levels of diamonds (g0 has children a0 and b0, both have child g1, ...): 2^30 paths from
// the top, a chain of 61 groups (64 is the most an inventory may nest). Host h's groups were collected once per path, so this never finished; each group
// is now walked once.
TEST_CASE("groups shared by many parents are walked once, not once per path") {
  std::string yaml;
  const int levels = 30;
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

// Ansible's documentation ("How to build your inventory") writes the same inventory in both
// formats; loaded side by side they must give the same hosts, groups and variables.
namespace {
const char* k_doc_ini = R"(mail.example.com

[webservers]
foo.example.com
bar.example.com

[dbservers]
one.example.com
two.example.com
three.example.com

[atlanta]
host1 http_port=80 maxRequestsPerChild=808
host2 http_port=303 maxRequestsPerChild=909

[atlanta:vars]
ntp_server=ntp.atlanta.example.com
proxy=proxy.atlanta.example.com

[southeast:children]
atlanta

[southeast:vars]
some_server=foo.southeast.example.com
halon_system_timeout=30
self_destruct_countdown=60
escape_pods=2

[usa:children]
southeast

[www]
www[01:03].example.com

[jumpers]
jumper ansible_port=5555 ansible_host=192.0.2.50
badwolf.example.com:5309
)";

const char* k_doc_yaml = R"(ungrouped:
  hosts:
    mail.example.com:
webservers:
  hosts:
    foo.example.com:
    bar.example.com:
dbservers:
  hosts:
    one.example.com:
    two.example.com:
    three.example.com:
atlanta:
  hosts:
    host1:
      http_port: 80
      maxRequestsPerChild: 808
    host2:
      http_port: 303
      maxRequestsPerChild: 909
  vars:
    ntp_server: ntp.atlanta.example.com
    proxy: proxy.atlanta.example.com
southeast:
  children:
    atlanta:
  vars:
    some_server: foo.southeast.example.com
    halon_system_timeout: 30
    self_destruct_countdown: 60
    escape_pods: 2
usa:
  children:
    southeast:
www:
  hosts:
    www[01:03].example.com:
jumpers:
  hosts:
    jumper:
      ansible_port: 5555
      ansible_host: 192.0.2.50
    badwolf.example.com:
      ansible_port: 5309
)";

// Everything a rollout reads of a host, in one comparable value.
std::map<std::string, std::string> flat(const Inventory& inv) {
  std::map<std::string, std::string> out;
  for (const auto& h : inv.hosts) {
    std::string groups;
    for (const auto& g : h.groups) groups += g + ",";
    out[h.name] = h.address + ":" + std::to_string(h.port) + " " + h.user + " [" + groups + "]";
    for (const auto& [k, v] : h.vars) out[h.name + "." + k] = v;
  }
  return out;
}
}  // namespace

TEST_CASE("Ansible's documented INI and YAML inventories load to the same hosts and variables") {
  CHECK(detect_format(k_doc_ini, "hosts") == Format::ini);
  CHECK(detect_format(k_doc_yaml, "hosts") == Format::yaml);
  auto ini = parse_inventory(k_doc_ini, "hosts");
  REQUIRE(ini);
  auto yml = parse_inventory(k_doc_yaml, "hosts.yml");
  REQUIRE(yml);
  CHECK(flat(*ini) == flat(*yml));
  CHECK(ini->hosts.size() == 13);
  auto* host1 = ini->find("host1");
  REQUIRE(host1);
  CHECK(host1->vars.at("http_port") == "80");
  CHECK(host1->vars.at("ntp_server") == "ntp.atlanta.example.com");
  CHECK(host1->vars.at("escape_pods") == "2");  // from southeast, through [southeast:children]
  CHECK(host1->groups == std::vector<std::string>{"all", "usa", "southeast", "atlanta"});
  CHECK(host1->where == "hosts:13");
  CHECK(ini->find("www02.example.com"));
  CHECK(ini->find("jumper")->address == "192.0.2.50");
  CHECK(ini->find("jumper")->port == 5555);
  CHECK(ini->find("badwolf.example.com")->port == 5309);
  CHECK(ini->find("mail.example.com")->groups == std::vector<std::string>{"all", "ungrouped"});
  auto usa = select(*ini, "usa");
  REQUIRE(usa);
  CHECK(names(*usa) == std::vector<std::string>{"host1", "host2"});
}

TEST_CASE("INI: quoting, comments, [all:vars] and the same precedence as YAML") {
  auto inv = parse_inventory(R"(# a rack of Pi 5 boards
; another comment style
[all:vars]
ansible_user=pi
fleet_bench="3b"

[rack1]
pi-[1:3] ansible_host=127.0.0.1 note="two words" # the first rack
pi-2 fleet_bench=1b

[canary]
pi-1

[canary:vars]
fleet_min_tokens_per_s = 2.5
)",
                             "hosts.ini");
  REQUIRE(inv);
  REQUIRE(inv->hosts.size() == 3);
  auto* pi1 = inv->find("pi-1");
  CHECK(pi1->user == "pi");
  CHECK(pi1->address == "127.0.0.1");
  CHECK(pi1->vars.at("note") == "two words");
  CHECK(pi1->vars.at("fleet_bench") == "3b");
  CHECK(pi1->vars.at("fleet_min_tokens_per_s") == "2.5");
  CHECK(inv->find("pi-2")->vars.at("fleet_bench") == "1b");  // host beats group
  // Defined later in the file is defined: [g:vars] and children may come first.
  auto later = parse_inventory("[edge:children]\nrack\n[rack:vars]\nx=1\n[rack]\npi-1\n", "hosts");
  REQUIRE(later);
  CHECK(later->find("pi-1")->vars.at("x") == "1");
  // An IPv6 address has no :port (its colons are the address's).
  auto v6 = parse_inventory("[rack]\nfe80::1\npi-1:2222\n", "hosts");
  REQUIRE(v6);
  CHECK(v6->find("fe80::1")->port == 22);
  CHECK(v6->find("pi-1")->port == 2222);
  CHECK_FALSE(inv->find("pi-3")->vars.contains("fleet_min_tokens_per_s"));
}

TEST_CASE("host ranges, in INI and in YAML") {
  auto r = [](const char* p) {
    auto v = expand_host_range(p);
    REQUIRE(v);
    return *v;
  };
  using V = std::vector<std::string>;
  CHECK(r("pi-[01:03]") == V{"pi-01", "pi-02", "pi-03"});
  CHECK(r("pi-[8:10]") == V{"pi-8", "pi-9", "pi-10"});
  CHECK(r("rack-[a:c]") == V{"rack-a", "rack-b", "rack-c"});
  CHECK(r("n[0:6:3]") == V{"n0", "n3", "n6"});
  CHECK(r("r[a:b]-p[1:2]") == V{"ra-p1", "ra-p2", "rb-p1", "rb-p2"});
  CHECK(r("plain") == V{"plain"});
  struct Bad {
    const char* pattern;
    const char* expect;
  } bad[] = {
      {"pi-[3:1]", "ends before it starts"},
      {"pi-[01:100]", "zero-padded start needs an end of the same width"},
      {"pi-[1:]", "has no end"},
      {"pi-[1:2", "no closing ']'"},
      {"pi-1]", "without its '['"},
      {"pi-[x:9]", "neither numbers nor single letters"},
      {"pi-[1:9:0]", "step is not a whole number"},
      {"pi-[1:2:3:4]", "not [start:end]"},
      {"pi-[0:100000]", "more than 10000 hosts"},
      {"a[0:999]b[0:999]", "more than 10000 hosts"},
  };
  for (const auto& b : bad) {
    INFO(b.pattern);
    auto v = expand_host_range(b.pattern);
    REQUIRE_FALSE(v);
    CHECK_THAT(v.error().message, Catch::Contains(b.expect));
  }
  auto yml = parse_inventory("rack:\n  hosts:\n    pi-[01:32]:\n      ansible_user: pi\n", "hosts.yml");
  REQUIRE(yml);
  CHECK(yml->hosts.size() == 32);
  CHECK(yml->find("pi-17")->user == "pi");
  CHECK(yml->find("pi-32")->where == "hosts.yml:3:5");
  auto ini = parse_inventory("[rack]\npi-[01:32] ansible_user=pi\n", "hosts");
  REQUIRE(ini);
  CHECK(flat(*ini) == flat(*yml));
}

TEST_CASE("INI errors name the file and line") {
  struct Case {
    const char* ini;
    const char* expect;
  } cases[] = {
      {"[rack]\npi-1 ansible_port=twenty\n", "hosts:2: variable 'ansible_port' of host 'pi-1': 'twenty' is not a TCP port"},
      {"[rack]\npi-1\n[rack:vars]\nfleet_bench_threads=0\n",
       "hosts:4: variable 'fleet_bench_threads' of group 'rack': '0' is not a thread count"},
      {"[rack]\npi-1 stray\n", "hosts:2: expected key=value after host 'pi-1', got 'stray'"},
      {"[rack]\npi-1 note=\"open\n", "hosts:2: no closing quotation"},
      {"[rack:hosts]\npi-1\n", "hosts:1: section [rack:hosts] has an unknown kind 'hosts' (vars or children)"},
      {"[rack]\npi-1\n[rack:vars]\njust words\n", "hosts:4: expected key=value in [rack:vars], got 'just words'"},
      {"[rack]\npi-1\n[a b]\n", "hosts:3: group name 'a b' holds a space"},
      {"[rack]\npi;reboot\n", "hosts:2: 'pi;reboot' is not a usable host name"},
      {"[rack]\npi-[9:1]\n", "hosts:2: host range [9:1] ends before it starts"},
      {"[rack]\npi-1 ansible_host='1.2.3.4 x'\n", "address '1.2.3.4 x' is not usable"},
      {"[a:children]\nb\n[b:children]\na\n[b]\npi-1\n", "group 'a' contains itself through its children (a > b > a)"},
      {"[rack]\n# nothing\n", "hosts: no hosts"},
      {"[rack]\npi-1 a=\x01\n", "hosts:2: the line holds a control character"},
      // As Ansible: [g:vars] and a child of [p:children] name a group some section defines.
      {"[webservers]\npi-1\n[webserver:vars]\nntp=x\n", "hosts:3: section [webserver:vars] is for a group no section defines"},
      {"[rack]\npi-1\n[edge:children]\nrak\n", "hosts:4: [edge:children] names group 'rak', which no section defines"},
  };
  for (const auto& c : cases) {
    INFO(c.ini);
    auto inv = parse_inventory(c.ini, "hosts");
    REQUIRE_FALSE(inv);
    CHECK_THAT(inv.error().message, Catch::Contains(c.expect));
  }
}

TEST_CASE("a directory loads as Ansible loads it: every file, then group_vars/ and host_vars/") {
  test::TempDir tmp;
  auto dir = tmp.path() / "inventory";
  std::filesystem::create_directories(dir / "group_vars" / "rack1");
  std::filesystem::create_directories(dir / "host_vars");
  auto write = [](const std::filesystem::path& p, const std::string& text) {
    REQUIRE(fs::write_file_atomic(p, text));
  };
  write(dir / "hosts", "[rack1]\npi-[1:2] ansible_host=127.0.0.1 threads=2\n[rack1:vars]\nmodel=inline\nntp=inline\n");
  write(dir / "more.yml", "rack2:\n  hosts:\n    pi-3:\n");
  write(dir / "README.md", "not an inventory [at all\n");  // an ignored extension
  write(dir / ".hidden", "garbage = [\n");
  write(dir / "group_vars" / "all.yml", "ansible_user: pi\nmodel: from-all\nntp: from-all\npackages: [a, b]\n");
  write(dir / "group_vars" / "rack1" / "a.yml", "model: from-group-vars\n");
  write(dir / "group_vars" / "rack1" / "b.yml", "ansible_port: 2222\n");
  std::filesystem::create_directories(dir / "group_vars" / "rack1" / "more");
  write(dir / "group_vars" / "rack1" / "more" / "c.yaml", "deep: yes\n");      // subfolders are read
  write(dir / "group_vars" / "rack1" / "README.md", "# not variables [\n");  // other files are not
  write(dir / "group_vars" / "rack1" / "b.yml~", "ansible_port: [\n");
  write(dir / "group_vars" / "nosuchgroup.yml", "x: 1\n");  // Ansible ignores it
  write(dir / "host_vars" / "pi-2.yaml", "threads: 4\n");
  auto inv = load_inventory(dir);
  REQUIRE(inv);
  REQUIRE(inv->hosts.size() == 3);
  auto* pi1 = inv->find("pi-1");
  CHECK(pi1->user == "pi");
  CHECK(pi1->port == 2222);
  CHECK(pi1->vars.at("model") == "from-group-vars");  // group_vars/ beats the inventory's [rack1:vars]
  CHECK(pi1->vars.at("threads") == "2");
  // Every inventory file's group variables come before every group_vars/ file, as in
  // Ansible: group_vars/all.yml beats [rack1:vars].
  CHECK(pi1->vars.at("ntp") == "from-all");
  CHECK(pi1->vars.at("deep") == "yes");
  CHECK(pi1->vars.at("packages") == "[a, b]");  // what playbooks use is kept, as YAML text
  CHECK(inv->find("pi-2")->vars.at("threads") == "4");  // host_vars/ beats inline
  CHECK(inv->find("pi-3")->vars.at("model") == "from-all");
  CHECK(inv->find("pi-3")->where == (dir / "more.yml").string() + ":3:5");

  // A file loads the group_vars/ beside it too.
  auto one = load_inventory(dir / "hosts");
  REQUIRE(one);
  CHECK(one->find("pi-1")->vars.at("model") == "from-group-vars");

  // A bad vars file is named, with its line.
  write(dir / "host_vars" / "pi-1.yml", "ansible_port: 99999\n");
  auto bad = load_inventory(dir);
  REQUIRE_FALSE(bad);
  CHECK_THAT(bad.error().message,
             Catch::Contains((dir / "host_vars" / "pi-1.yml").string() + ":1:15: variable 'ansible_port' of host 'pi-1'"));

  // A list where fleetctl reads a plain value is refused; a vault file is named.
  write(dir / "host_vars" / "pi-1.yml", "ansible_host: [a, b]\n");
  auto listed = load_inventory(dir);
  REQUIRE_FALSE(listed);
  CHECK_THAT(listed.error().message, Catch::Contains("pi-1.yml:1:15: variable 'ansible_host' of host 'pi-1' must be a plain value"));
  write(dir / "host_vars" / "pi-1.yml", "$ANSIBLE_VAULT;1.1;AES256\n6162\n");
  auto vault = load_inventory(dir);
  REQUIRE_FALSE(vault);
  CHECK_THAT(vault.error().message, Catch::Contains("pi-1.yml: encrypted with ansible-vault"));

  auto empty = tmp.path() / "empty";
  std::filesystem::create_directories(empty);
  auto none = load_inventory(empty);
  REQUIRE_FALSE(none);
  CHECK_THAT(none.error().message, Catch::Contains("no inventory file in this directory"));
}
