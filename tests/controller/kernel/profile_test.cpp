#include <catch2/catch.hpp>

#include "controller/kernel/profile.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::kernel;

namespace {

const std::string k_valid = R"(name: t
description: test
source:
  tarball: /usr/src/linux-source-6.1.tar.xz
base:
  target: allnoconfig
  fragments: [base/qemu-virt.config]
fragments: [memory, tick]
optional_symbols: [NUMA_EMU]
settings:
  thp_mode: madvise
  localversion: -t
build:
  targets: [Image]
  image: {from: arch/arm64/boot/Image, name: kernel_2712.img}
cmdline: [console=ttyAMA0]
contract:
  page_size: 16384
  thp: madvise
  numa_nodes: 2
  hz: 100
  tick: NO_HZ_IDLE
  headless: true
)";

std::string replace(std::string s, const std::string& from, const std::string& to) {
  auto at = s.find(from);
  REQUIRE(at != std::string::npos);
  return s.replace(at, from.size(), to);
}

// Lists of ten aliases of the list before: 10x more nodes through aliases per line.
std::string alias_bomb_lines(int levels) {
  std::string t = "x0: &b0 [a, a, a, a, a, a, a, a, a, a]\n";
  for (int i = 1; i <= levels; ++i) {
    t += "x" + std::to_string(i) + ": &b" + std::to_string(i) + " [";
    for (int k = 0; k < 10; ++k) t += std::string(k ? ", " : "") + "*b" + std::to_string(i - 1);
    t += "]\n";
  }
  return t;
}

}  // namespace

TEST_CASE("the repository's profiles load") {
  auto kdir = test::source_dir() / "kernel";
  auto names = list_profiles(kdir);
  REQUIRE(names == std::vector<std::string>{"qemu-virt", "rpi5", "rpi5-qemu"});
  for (const auto& n : names) {
    INFO(n);
    auto p = load_profile(n, kdir);
    REQUIRE(p);
    CHECK(p->image_name == "kernel_2712.img");
    CHECK(p->contract.page_size == 16384);
    CHECK(p->contract.hz == 100);
    CHECK(p->contract.tick == "NO_HZ_IDLE");
    CHECK(p->thp_mode == "madvise");
  }
  auto rpi5 = load_profile("rpi5", kdir);
  CHECK(rpi5->base_target == "bcm2712_defconfig");
  CHECK(rpi5->source.git_ref == "rpi-6.12.y");
  REQUIRE(rpi5->dtbs);
  REQUIRE(rpi5->overlays);
}

TEST_CASE("a valid profile parses with resolved fragment paths") {
  auto p = parse_profile(k_valid, "t.yaml", "/k");
  REQUIRE(p);
  CHECK(p->base_fragments == std::vector<std::filesystem::path>{"/k/base/qemu-virt.config"});
  CHECK(p->fragments == std::vector<std::filesystem::path>{"/k/fragments/memory.config", "/k/fragments/tick.config"});
  CHECK(p->cmdline == std::vector<std::string>{"console=ttyAMA0"});
  CHECK(p->contract.numa_nodes == 2);
  auto frag = settings_fragment(*p);
  CHECK(frag.find("CONFIG_TRANSPARENT_HUGEPAGE_MADVISE=y") != std::string::npos);
  CHECK(frag.find("CONFIG_LOCALVERSION=\"\"") != std::string::npos);
}

TEST_CASE("profile errors name file, line and field") {
  struct Case {
    std::string yaml;
    const char* expect;
  };
  const Case cases[] = {
      {replace(k_valid, "thp_mode: madvise", "thp_mode: sometimes"),
       "t.yaml:11:13: settings.thp_mode must be always or madvise"},
      {replace(k_valid, "  thp: madvise\n", "  thp: always\n"),
       "contract.thp is always but settings.thp_mode is madvise"},
      {replace(k_valid, "  hz: 100", "  hz: fast"), "t.yaml:21:7: field 'hz' must be an integer"},
      {replace(k_valid, "  tick: NO_HZ_IDLE", "  tick: NO_HZ"), "field 'tick' must be"},
      {replace(k_valid, "localversion: -t", "localversion: t x"), "settings.localversion must start with '-'"},
      {replace(k_valid, "fragments: [memory, tick]", "fragments: [../memory]"), "fragment names have no '/'"},
      {replace(k_valid, "cmdline:", "cmdlne:"), "t.yaml:16:1: unknown field 'cmdlne'"},
      {replace(k_valid, "  tarball: /usr/src/linux-source-6.1.tar.xz", "  git: https://example.invalid/linux.git"),
       "a git source needs a pinned 'ref'"},
      {replace(k_valid, "  target: allnoconfig", "  target: Image"), "base.target must be a config target"},
      {"name: [unclosed", "t.yaml:1:"},
      // The guards every YAML input gets (controller/yaml/load.hpp), before any field is read.
      {replace(k_valid, "description: test\n", "description: test\nname: u\n"),
       "t.yaml:3:1: field 'name' is defined twice in this mapping (first at line 1)"},
      {replace(k_valid, "  thp_mode: madvise\n", "  thp_mode: madvise\n  thp_mode: always\n"),
       "t.yaml:12:3: field 'thp_mode' is defined twice in this mapping (first at line 11)"},
      // 110 + 1,110 nodes on lines 2-3; on line 4 the eighth alias of 1,111 passes 10,000.
      {alias_bomb_lines(6) + k_valid, "t.yaml:4:45: the document expands past 10000 nodes through YAML aliases"},
      {"name: &n [*n]\n", "t.yaml:1:11: an alias inside its own anchor"},
      // as<std::string>() on such a key threw out of parse_profile.
      {"? [a]\n: b\n", "t.yaml:1:3: a key that is a list or a map"},
      // Found by tests/fuzz/profile_fuzz: a byte that is not UTF-8 threw out of parse_profile.
      {replace(k_valid, "  tick: NO_HZ_IDLE", "  tick: NO_HZ\xff_IDLE"), "t.yaml:18:3: field 'tick' must be"},
      // Found by tests/fuzz/profile_fuzz: a map as a key threw yaml-cpp's bad conversion.
      {replace(k_valid, "  thp_mode: madvise", "? thp_mode: madvise"), "a key that is a list or a map"},
      {"- a list", "a profile is a YAML map"},
      {replace(k_valid, "cmdline: [console=ttyAMA0]", "cmdline: [\"quiet\\ninit=/bin/sh\"]"),
       "t.yaml:16:11: cmdline word 'quiet\\x0ainit=/bin/sh' holds a control character"},
  };
  for (const auto& c : cases) {
    INFO(c.yaml);
    auto p = parse_profile(c.yaml, "t.yaml", "/k");
    REQUIRE_FALSE(p);
    CHECK_THAT(p.error().message, Catch::Contains(c.expect));
  }
}

TEST_CASE("load_profile: unknown names list the known ones, missing fragments are named") {
  auto kdir = test::source_dir() / "kernel";
  auto p = load_profile("rpi4", kdir);
  REQUIRE_FALSE(p);
  CHECK_THAT(p.error().message, Catch::Contains("known: qemu-virt, rpi5, rpi5-qemu"));

  test::TempDir dir;
  auto file = dir.write("profiles/t.yaml", k_valid);
  auto q = load_profile(file.string(), dir.path());
  REQUIRE_FALSE(q);
  CHECK_THAT(q.error().message, Catch::Contains("base/qemu-virt.config does not exist"));
}

TEST_CASE("rpi5-qemu is rpi5 plus one fragment, its own release name and console, the same contract") {
  auto kdir = test::source_dir() / "kernel";
  auto rpi5 = load_profile("rpi5", kdir);
  auto q = load_profile("rpi5-qemu", kdir);
  REQUIRE(rpi5);
  REQUIRE(q);
  CHECK(q->name == "rpi5-qemu");
  CHECK(q->base_target == rpi5->base_target);
  CHECK(q->source.git_url == rpi5->source.git_url);
  std::vector<std::filesystem::path> want = rpi5->fragments;
  want.push_back(kdir / "fragments/qemu-virt-board.config");
  CHECK(q->fragments == want);
  CHECK(q->thp_mode == rpi5->thp_mode);
  CHECK(q->localversion == "-v8-16k-fleet-qemu");
  CHECK(q->targets == rpi5->targets);
  CHECK(q->cmdline == std::vector<std::string>{"console=ttyAMA0"});
  CHECK(contract_to_json(q->contract) == contract_to_json(rpi5->contract));
  CHECK(q->contract.numa_emulation == true);
  // Both files name the build: a change to rpi5.yaml is a change to rpi5-qemu.
  CHECK(q->files == std::vector<std::filesystem::path>{kdir / "profiles/rpi5.yaml", kdir / "profiles/rpi5-qemu.yaml"});
}

TEST_CASE("extends: a profile needs its own name and release, and a chain of extends is bounded") {
  test::TempDir dir;
  dir.write("fragments/memory.config", "CONFIG_NUMA=y\n");
  dir.write("fragments/tick.config", "CONFIG_HZ_100=y\n");
  dir.write("base/qemu-virt.config", "CONFIG_64BIT=y\n");
  dir.write("profiles/t.yaml", k_valid);
  dir.write("profiles/same-name.yaml", "name: t\nextends: t\nsettings: {localversion: -u}\n");
  dir.write("profiles/same-release.yaml", "name: u\nextends: t\n");
  dir.write("profiles/loop-a.yaml", "name: a\nextends: loop-b\nsettings: {localversion: -a}\n");
  dir.write("profiles/loop-b.yaml", "name: b\nextends: loop-a\nsettings: {localversion: -b}\n");
  dir.write("profiles/path.yaml", "name: p\nextends: ../t\n");
  dir.write("profiles/ok.yaml", "name: ok\nextends: t\nextra_fragments: [tick]\nsettings: {localversion: -ok}\n");
  auto named = load_profile("same-name", dir.path());
  REQUIRE_FALSE(named);
  CHECK_THAT(named.error().message, Catch::Contains("same-name.yaml:1") && Catch::Contains("name of the one it extends"));
  auto release = load_profile("same-release", dir.path());
  REQUIRE_FALSE(release);
  CHECK_THAT(release.error().message, Catch::Contains("localversion must differ"));
  auto loop = load_profile("loop-a", dir.path());
  REQUIRE_FALSE(loop);
  CHECK_THAT(loop.error().message, Catch::Contains("deeper than 4"));
  auto path = load_profile("path", dir.path());
  REQUIRE_FALSE(path);
  CHECK_THAT(path.error().message, Catch::Contains("path.yaml:2") && Catch::Contains("profile name"));
  auto ok = load_profile("ok", dir.path());
  REQUIRE(ok);
  CHECK(ok->fragments.size() == 3);  // memory, tick from t, then tick again
  CHECK(ok->contract.numa_nodes == 2);
  CHECK(ok->localversion == "-ok");
}
