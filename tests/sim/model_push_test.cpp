// fleetctl model push against light boards: real sshd per board on loopback, real SSH,
// fleet-model run on each board over it, libtorrent over TLS between them, a real SQLite file.
#include <sys/utsname.h>

#include <catch2/catch.hpp>
#include <random>

#include "tests/support/light_rack.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {

std::filesystem::path model_file(const test::TempDir& dir, std::size_t size, unsigned seed) {
  std::mt19937_64 rng(seed);
  std::string s(size, '\0');
  for (std::size_t i = 0; i + 8 <= size; i += 8) {
    const auto v = rng();
    std::memcpy(s.data() + i, &v, 8);
  }
  return dir.write("tiny-" + std::to_string(seed) + ".gguf", s);
}

std::vector<std::string> push_args(const std::filesystem::path& file, std::vector<std::string> more = {}) {
  std::vector<std::string> a{"model", "push", file.string(), "--board-tools", std::string(FLEET_BOARD_TOOLS),
                             "--listen", "127.0.0.1:0"};
  a.insert(a.end(), more.begin(), more.end());
  return a;
}

std::string held_on(const test::LightRack& rack, const std::string& board, const std::string& name) {
  auto f = fs::read_file(rack.rack() / board / "root/var/lib/fleet/models" / name);
  return f ? hash::sha256_hex(*f) : "absent";
}

// This machine's board tools (DIR/ARCH), as a board of this machine's arch takes them.
std::filesystem::path host_board_tools() {
  utsname u{};
  REQUIRE(uname(&u) == 0);
  return std::filesystem::path(FLEET_BOARD_TOOLS) / u.machine;
}

// A shell script at `path` that anybody may run (a board's stand-in fleet-model).
void write_program(const std::filesystem::path& path, const std::string& text) {
  REQUIRE(fs::write_file_atomic(path, text));
  std::filesystem::permissions(path, std::filesystem::perms::owner_all | std::filesystem::perms::group_read |
                                         std::filesystem::perms::others_read | std::filesystem::perms::others_exec);
}

}  // namespace

TEST_CASE("fleetctl model push puts a file on every light board peer to peer, and skips boards that hold it") {
  test::TempDir dir("fleet-model-push");
  const auto stock = test::make_bundle(dir / "stock", "6.1.0-stock", R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  test::LightRack rack(stock, 3);
  const auto file = model_file(dir, 5 * 1024 * 1024 + 123, 1);
  const auto sha = *hash::sha256_file(file);

  // The controller's uplink is slow (1 MB/s): the boards must trade pieces among themselves.
  auto r = test::fleetctl(rack, push_args(file, {"--max-rate", "1M"}));
  INFO(r.output);
  REQUIRE(r.exit_code == 0);
  CHECK_THAT(r.output, Catch::Contains("3 complete, 0 held it already, 0 failed"));
  CHECK_THAT(r.output, Catch::Contains("model push: "));  // progress lines
  for (const char* b : {"pi-1", "pi-2", "pi-3"}) CHECK(held_on(rack, b, file.filename().string()) == sha);
  // What `model list` knows, as JSON.
  auto list = process::capture({{FLEETCTL, "model", "list", "--json", "--state", (rack.rack() / "fleet.db").string()},
                                {}, {}, 30s});
  REQUIRE(list);
  auto j = nlohmann::json::parse(*list);  // fleet.v1.ListModelsResponse in protobuf's JSON mapping
  REQUIRE(j["models"].size() == 3);
  for (const auto& m : j["models"]) {
    CHECK(m["sha256"] == sha);
    CHECK(m["path"] == "/var/lib/fleet/models/" + file.filename().string());
    CHECK(m["size_bytes"] == std::to_string(std::filesystem::file_size(file)));  // 64-bit: a string
  }

  SECTION("again: every board holds it, nothing is sent") {
    auto again = test::fleetctl(rack, push_args(file, {"--json"}));
    INFO(again.output);
    REQUIRE(again.exit_code == 0);
    auto s = nlohmann::json::parse(again.output);
    CHECK(s["controller_sent"] == 0);
    for (const auto& b : s["boards"]) CHECK(b["outcome"] == "held");
  }
  SECTION("bad input is named: a rate, a missing file") {
    auto bad = test::fleetctl(rack, push_args(file, {"--max-rate", "fast"}));
    CHECK(bad.exit_code == 2);
    CHECK_THAT(bad.output, Catch::Contains("--max-rate must be a number of bytes"));
    auto none = test::fleetctl(rack, push_args(dir / "absent.gguf"));
    CHECK(none.exit_code != 0);
    CHECK_THAT(none.output, Catch::Contains("absent.gguf"));
  }
}

TEST_CASE("fleetctl model push refuses a board without room before sending a byte, naming the room and the size") {
  test::TempDir dir("fleet-model-full");
  const auto stock = test::make_bundle(dir / "stock", "6.1.0-stock", R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  test::LightRack rack(stock, 1, {"--models-size", "1024"});  // 1 MiB for models
  const auto file = model_file(dir, 3 * 1024 * 1024, 2);
  auto r = test::fleetctl(rack, push_args(file));
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("pi-1: no_room: /var/lib/fleet/models has "));
  CHECK_THAT(r.output, Catch::Contains("the file needs 3.1 MB: nothing sent"));
  CHECK(held_on(rack, "pi-1", file.filename().string()) == "absent");
  // Nothing of the transfer was started on the board.
  CHECK_FALSE(std::filesystem::exists(rack.rack() / "pi-1/root/var/lib/fleet/models/.fleet-models/partial"));
}

TEST_CASE("a model push cut off by killing fleetctl continues from the pieces the boards verified") {
  test::TempDir dir("fleet-model-resume");
  const auto stock = test::make_bundle(dir / "stock", "6.1.0-stock", R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  test::LightRack rack(stock, 2);
  const auto file = model_file(dir, 12 * 1024 * 1024, 3);
  const auto size = static_cast<std::int64_t>(std::filesystem::file_size(file));
  // 12 MB at 1 MB/s from the controller: killed once the fleet has a third of it.
  auto argv = test::fleetctl_argv(rack, push_args(file, {"--max-rate", "1M"}));
  bool killed = false;
  std::string first;
  auto r = process::run({argv, {}, {}, 120s, {}, [&] {
                           // "model push: 4.2 MB of 13 MB (33%)": stop past 33%.
                           auto at = first.rfind("model push: ");
                           if (at == std::string::npos) return true;
                           auto pct = first.find("(", at);
                           if (pct == std::string::npos) return true;
                           killed = std::atoi(first.c_str() + pct + 1) >= 33;
                           return !killed;
                         }},
                        [&](std::string_view line) { first += std::string(line) + "\n"; });
  INFO(first);
  REQUIRE(r);
  REQUIRE(killed);
  CHECK(r->stopped);
  // Nothing half-written under the model's name.
  for (const char* b : {"pi-1", "pi-2"}) CHECK(held_on(rack, b, file.filename().string()) == "absent");
  auto again = test::fleetctl(rack, push_args(file, {"--json"}));
  INFO(again.output);
  REQUIRE(again.exit_code == 0);
  auto s = nlohmann::json::parse(again.output.substr(again.output.find('{')));
  std::int64_t fetched = 0;
  for (const auto& b : s["boards"]) {
    CHECK(b["outcome"] == "complete");
    fetched += b["fetched_bytes"].get<std::int64_t>();
  }
  // The second push took less than the two whole copies: the first one's pieces counted.
  CHECK(fetched < 2 * size - size / 2);
  for (const char* b : {"pi-1", "pi-2"}) CHECK(held_on(rack, b, file.filename().string()) == *hash::sha256_file(file));
}

TEST_CASE("model push, board tools installed: each board's own fleet-model, of this version only, nothing copied") {
  test::TempDir dir("fleet-model-installed");
  const auto stock = test::make_bundle(dir / "stock", "6.1.0-stock", R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  test::LightRack rack(stock, 3);
  // pi-1 has this build's fleet-model on its PATH, as the fleet-model package puts it there
  // (/usr/local/bin here: a light board's own /usr is this machine's); pi-2 has one of another
  // version; pi-3 has none.
  const std::filesystem::path tools = host_board_tools();
  const auto pi1 = rack.rack() / "pi-1/usr-local";
  std::filesystem::create_directories(pi1 / "lib/fleet-model");
  std::filesystem::copy_file(tools / "bin/fleet-model", pi1 / "bin/fleet-model");
  for (const auto& e : std::filesystem::directory_iterator(tools / "lib/fleet-model"))
    std::filesystem::copy_file(e.path(), pi1 / "lib/fleet-model" / e.path().filename());
  const auto old = rack.rack() / "pi-2/usr-local/bin/fleet-model";
  write_program(old, "#!/bin/sh\necho 'fleet-model 0.0.1 (commit 0123456789ab)'\n");
  const auto file = model_file(dir, 2 * 1024 * 1024, 4);
  auto r = test::fleetctl(rack, {"model", "push", file.string(), "--board-tools", "installed", "--listen", "127.0.0.1:0"});
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("1 complete, 0 held it already, 2 failed"));
  CHECK(held_on(rack, "pi-1", file.filename().string()) == *hash::sha256_file(file));
  CHECK_THAT(r.output, Catch::Contains("board pi-2: its fleet-model says 'fleet-model 0.0.1 (commit 0123456789ab)', this fleetctl is "));
  CHECK_THAT(r.output, Catch::Contains("board pi-3: no fleet-model runs there ("));
  CHECK_THAT(r.output, Catch::Contains("install the fleet-model package"));
  for (const char* b : {"pi-2", "pi-3"}) CHECK(held_on(rack, b, file.filename().string()) == "absent");
  // Installed means installed: nothing was copied to any board (copies go to fleetctl's own
  // folder, /usr/local/lib/fleet-model/bin, off the PATH).
  for (const char* b : {"pi-1", "pi-2", "pi-3"})
    CHECK_FALSE(std::filesystem::exists(rack.rack() / b / "usr-local/lib/fleet-model/bin/fleet-model"));

  SECTION("copied tools go to fleetctl's own folder, where they shadow nothing installed") {
    auto copied = test::fleetctl(rack, push_args(file, {"--limit", "pi-2"}));
    INFO(copied.output);
    CHECK(copied.exit_code == 0);
    CHECK(std::filesystem::exists(rack.rack() / "pi-2/usr-local/lib/fleet-model/bin/fleet-model"));
    CHECK(fs::read_file(old).value_or("") == "#!/bin/sh\necho 'fleet-model 0.0.1 (commit 0123456789ab)'\n");
    CHECK(held_on(rack, "pi-2", file.filename().string()) == *hash::sha256_file(file));
  }
}

TEST_CASE("model push: a board whose fleet-model prints a wrong event fails, naming the event and the field") {
  test::TempDir dir("fleet-model-bad-event");
  const auto stock = test::make_bundle(dir / "stock", "6.1.0-stock", R"("page_size":4096,"thp":"always","hz":250,"tick":"HZ_PERIODIC")");
  test::LightRack rack(stock, 1);
  // An "installed" fleet-model of the right version that answers inspect as the real one does,
  // then says it listens on port 0, and waits for its stdin to close.
  auto version = process::capture({{(host_board_tools() / "bin/fleet-model").string(), "--version"}, {}, {}, 30s});
  REQUIRE(version);
  while (!version->empty() && version->back() == '\n') version->pop_back();
  const auto tool = rack.rack() / "pi-1/usr-local/bin/fleet-model";
  write_program(tool, "#!/bin/sh\ncase \"$1\" in\n"
                                      "  --version) echo '" + *version + "' ;;\n"
                                      "  inspect) echo '{\"event\":\"inspect\",\"holds\":false,\"free_bytes\":1000000000000,\"partial_bytes\":0}' ;;\n"
                                      "  fetch) echo '{\"event\":\"listening\",\"port\":0,\"name\":\"x\",\"size\":1}'; cat >/dev/null; exit 3 ;;\n"
                                      "esac\n");
  const auto file = model_file(dir, 256 * 1024, 5);
  auto r = test::fleetctl(rack, {"model", "push", file.string(), "--board-tools", "installed", "--listen", "127.0.0.1:0"});
  INFO(r.output);
  CHECK(r.exit_code == 1);
  CHECK_THAT(r.output, Catch::Contains("pi-1: failed: fetch: fleet-model's 'listening' event: port is missing or not a "
                                       "whole number from 1 to 65535"));
  CHECK_THAT(r.output, Catch::Contains("0 complete, 0 held it already, 1 failed"));
  CHECK(held_on(rack, "pi-1", file.filename().string()) == "absent");
}
