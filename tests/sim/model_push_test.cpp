// fleetctl model push against light boards: real sshd per board on loopback, real SSH,
// fleet-model run on each board over it, libtorrent over TLS between them, a real SQLite file.
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
  auto j = nlohmann::json::parse(*list);
  REQUIRE(j.size() == 3);
  for (const auto& m : j) {
    CHECK(m["sha256"] == sha);
    CHECK(m["path"] == "/var/lib/fleet/models/" + file.filename().string());
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
                           // "model push: 4.19 MB of 25.2 MB (16%)": stop past 33%.
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
