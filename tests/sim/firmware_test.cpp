#include <catch2/catch.hpp>
#include <map>

#include "sim/firmware.hpp"

using namespace fleet::sim;

namespace {

using Files = std::map<std::string, std::string>;

BootFileReader reader(const Files& files) {
  return [files](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
}

const Files k_stock = {
    {"config.txt", "# stock\n[all]\ndtparam=watchdog=on\n"},
    {"kernel_2712.img", "K0"},
    {"cmdline.txt", "console=ttyAMA0 root=/dev/vda\n"},
};

Files with(Files base, const Files& more) {
  for (const auto& [k, v] : more) base[k] = v;
  return base;
}

}  // namespace

// Scenario table: boot files and the tryboot flag in, kernel and command line out.
TEST_CASE("firmware boot rules") {
  struct Scenario {
    const char* name;
    Files files;
    bool tryboot;
    const char* config;
    const char* kernel;
    const char* cmdline;
    bool fell_back;
  };
  const Files slot_b = with(k_stock, {{"slot-b/kernel_2712.img", "K1"}, {"slot-b/cmdline.txt", "console=ttyAMA0 new\n"}});
  const Scenario scenarios[] = {
      {"stock board", k_stock, false, "config.txt", "kernel_2712.img", "console=ttyAMA0 root=/dev/vda", false},
      {"tryboot flag without tryboot.txt file is no boot", k_stock, true, nullptr, nullptr, nullptr, false},
      {"tryboot reads tryboot.txt with os_prefix",
       with(slot_b, {{"tryboot.txt", "[all]\nos_prefix=slot-b/\n"}}), true, "tryboot.txt", "slot-b/kernel_2712.img",
       "console=ttyAMA0 new", false},
      {"without the flag the same board boots config.txt",
       with(slot_b, {{"tryboot.txt", "[all]\nos_prefix=slot-b/\n"}}), false, "config.txt", "kernel_2712.img",
       "console=ttyAMA0 root=/dev/vda", false},
      {"committed: config.txt carries the prefix", with(slot_b, {{"config.txt", "os_prefix=slot-b/\n"}}), false,
       "config.txt", "slot-b/kernel_2712.img", "console=ttyAMA0 new", false},
      {"prefix whose kernel is missing falls back silently",
       with(k_stock, {{"config.txt", "os_prefix=slot-c/\n"}, {"slot-c/cmdline.txt", "x"}}), false, "config.txt",
       "kernel_2712.img", "console=ttyAMA0 root=/dev/vda", true},
      {"kernel= and cmdline= are honoured under the prefix",
       with(k_stock, {{"config.txt", "os_prefix=s/\nkernel=Image\ncmdline=args.txt\n"}, {"s/Image", "K"},
                      {"s/args.txt", "a=1\n"}}),
       false, "config.txt", "s/Image", "a=1", false},
      {"[pi4] sections are ignored, [pi5] and [all] apply",
       with(slot_b, {{"config.txt", "[pi4]\nos_prefix=nope/\n[pi5]\nos_prefix=slot-b/\n[all]\n"}}), false,
       "config.txt", "slot-b/kernel_2712.img", "console=ttyAMA0 new", false},
      {"[tryboot] section applies on a tryboot only",
       with(slot_b, {{"config.txt", "[tryboot]\nos_prefix=slot-b/\n"}, {"tryboot.txt", "[tryboot]\nos_prefix=slot-b/\n"}}),
       false, "config.txt", "kernel_2712.img", "console=ttyAMA0 root=/dev/vda", false},
      {"no kernel anywhere: nothing boots", Files{{"config.txt", ""}}, false, nullptr, nullptr, nullptr, false},
      {"missing cmdline file: empty command line", with(k_stock, {{"config.txt", "cmdline=none.txt\n"}}), false,
       "config.txt", "kernel_2712.img", "", false},
  };
  for (const auto& s : scenarios) {
    INFO(s.name);
    auto c = choose_boot(reader(s.files), s.tryboot);
    if (!s.kernel) {
      CHECK_FALSE(c);
      continue;
    }
    REQUIRE(c);
    CHECK(c->config_file == s.config);
    CHECK(c->kernel == s.kernel);
    CHECK(c->cmdline == s.cmdline);
    CHECK(c->fell_back == s.fell_back);
  }
}

TEST_CASE("the kernel gets the Pi 5 device tree's bootargs, the bootloader's words, two spaces, cmdline.txt") {
  auto line = kernel_cmdline("console=ttyAMA0 root=root", {"numa=fake=4", "system_heap.max_order=0"});
  CHECK(line == std::string(fleet::bootloader::k_pi5_dtb_bootargs) +
                    " numa=fake=4 system_heap.max_order=0  console=ttyAMA0 root=root");
  CHECK_THAT(line, Catch::Contains("numa_policy=interleave"));
}

TEST_CASE("bootloader releases: the published ones with their hashes, other dates at midnight, bad dates refused") {
  auto known = bootloader_release("2024-05-13");
  REQUIRE(known);
  CHECK(known->build_timestamp == 1715613301);
  CHECK(known->version == "83b5e5e61a70a93caee65cbd6aea77bdd485e5b0");
  CHECK(known->capabilities == k_pi5_capabilities);
  auto other = bootloader_release("2024-04-20");
  REQUIRE(other);
  CHECK(other->build_timestamp == 1713571200);
  CHECK(other->version.empty());
  CHECK(fleet::bootloader::date_of(*other->build_timestamp) == "2024-04-20");
  for (const char* bad : {"2024-4-20", "yesterday", "2024-13-01", "1999-01-01", "2024-04-20x", ""}) {
    auto r = bootloader_release(bad);
    INFO(bad);
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("YYYY-MM-DD"));
  }
  CHECK(bootloader_release(k_default_release)->build_timestamp >= fleet::bootloader::k_numa.unix_time);
}

TEST_CASE("a board's Ethernet address: Raspberry Pi's OUI, stable per name, different between boards") {
  CHECK(board_macaddr("pi-1") == board_macaddr("pi-1"));
  CHECK(board_macaddr("pi-1") != board_macaddr("pi-2"));
  CHECK(board_macaddr("pi-1").starts_with("2c:cf:67:"));
  CHECK(board_macaddr("pi-1").size() == 17);
}
