// fleet-sim rack: boards made, started and described by one command, as a user runs it.
#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "controller/inventory/inventory.hpp"
#include "tests/support/sshd.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace std::chrono_literals;

namespace {
std::string run(const std::vector<std::string>& argv, int want_exit = 0) {
  std::string out;
  auto r = process::run({argv, {}, {}, 600s}, [&](std::string_view l) {
    out.append(l);
    out.push_back('\n');
  });
  REQUIRE(r);
  INFO(process::render(argv) << "\n" << out);
  CHECK(r->exit_code == want_exit);
  return out;
}
}  // namespace

TEST_CASE("fleet-sim rack: up makes and starts N boards and writes their inventory, down stops them") {
  test::TempDir dir{"fleet-rack"};
  const auto rack = (dir / "rack").string();
  // Four free ports in a row: SSH on base+1, base+2; fleet-model's forwards on base+3, base+4.
  const int base = test::free_port_run(4) - 1;
  const int model_base = base + 2;
  struct Down {  // whatever happens, no QEMU is left behind
    std::string rack;
    ~Down() { (void)process::run({{FLEET_SIM, "rack", "down", "--rack", rack}, {}, {}, 120s}, [](std::string_view) {}); }
  } down{rack};
  auto out = run({FLEET_SIM, "rack", "up", "-n", "2", "--rack", rack, "--bundle",
                  std::string(FLEET_E2E_BUNDLES) + "/qemu-virt-stock", "--base-port", std::to_string(base),
                  "--model-base-port", std::to_string(model_base)});
  CHECK_THAT(out, Catch::Contains("board pi-1 created"));
  CHECK_THAT(out, Catch::Contains("rack ready: inventory " + rack + "/inventory.yml"));

  auto status = nlohmann::json::parse(run({FLEET_SIM, "rack", "status", "--rack", rack, "--json"}));
  REQUIRE(status.size() == 2);
  for (const auto& b : status) {
    CHECK(b["state"] == "ready");
    CHECK(b["release"].get<std::string>().ends_with("-sim-stock"));
  }
  CHECK(status[1]["ssh_port"] == base + 2);

  // The inventory fleetctl reads: both boards, their ports, the rack's key, the probe shape.
  auto text = fs::read_file(dir / "rack/inventory.yml");
  REQUIRE(text);
  auto inv = inventory::parse_inventory(*text, "inventory.yml");
  REQUIRE(inv);
  REQUIRE(inv->hosts.size() == 2);
  CHECK(inv->hosts[0].name == "pi-1");
  CHECK(inv->hosts[0].port == base + 1);
  CHECK(inv->hosts[0].address == "127.0.0.1");
  CHECK(inv->hosts[0].vars.at("fleet_bench") == "15m");
  CHECK(std::filesystem::exists(inv->hosts[0].key));

  // A board answers on its port with the rack's key.
  auto uname = run({"ssh", "-i", inv->hosts[1].key, "-p", std::to_string(base + 2), "-o", "BatchMode=yes", "-o",
                    "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "root@127.0.0.1", "uname -r"});
  CHECK_THAT(uname, Catch::Contains("-sim-stock"));

  // fleetctl model push through QEMU's user networking: each board's fleet-model port is
  // forwarded from the host's loopback, and the boards dial each other at 10.0.2.2. The
  // controller's upload is slow (1 MB/s) next to a board's, so unless the boards trade
  // pieces through those forwards it sends two copies.
  CHECK(inv->hosts[1].vars.at("fleet_model_address") == "10.0.2.2:" + std::to_string(model_base + 2));
  CHECK(inv->hosts[1].vars.at("fleet_model_listen") == "0.0.0.0:6881");
  std::string model(4 * 1024 * 1024 + 17, '\0');
  for (std::size_t i = 0; i < model.size(); ++i) model[i] = static_cast<char>((i * 2654435761u) >> 13);
  const auto model_path = dir.write("rack-model.gguf", model);
  auto push = run({FLEETCTL, "model", "push", model_path.string(), "--inventory", rack + "/inventory.yml",
                   "--accept-new-host-keys", "--known-hosts", rack + "/known_hosts", "--state", rack + "/fleet.db",
                   "--board-tools", FLEET_BOARD_TOOLS, "--listen", "127.0.0.1:0", "--advertise", "10.0.2.2",
                   "--max-rate", "1M", "--json"});
  INFO(push);
  // stdout is the summary's JSON, which starts at the first '{' of a line (stderr, merged here, has none)
  const auto from = push.starts_with("{") ? 0 : push.find("\n{") + 1;
  auto summary = nlohmann::json::parse(push.substr(from, push.rfind('}') + 1 - from));
  REQUIRE(summary["boards"].size() == 2);
  for (const auto& b : summary["boards"]) CHECK(b["outcome"] == "complete");
  CHECK(summary["controller_sent"].get<double>() < 1.5 * static_cast<double>(model.size()));
  const std::string sha = hash::sha256_hex(model);
  for (int i : {1, 2}) {
    auto held = run({"ssh", "-i", inv->hosts[0].key, "-p", std::to_string(base + i), "-o", "BatchMode=yes", "-o",
                     "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=error",
                     "root@127.0.0.1",
                     "sha256sum /var/lib/fleet/models/rack-model.gguf"});
    CHECK_THAT(held, Catch::Contains(sha + "  /var/lib/fleet/models/rack-model.gguf"));
  }

  // Up again: nothing is created, running boards stay.
  out = run({FLEET_SIM, "rack", "up", "-n", "2", "--rack", rack, "--base-port", std::to_string(base)});
  CHECK_THAT(out, !Catch::Contains("created"));
  CHECK_THAT(out, Catch::Contains("already running"));

  run({FLEET_SIM, "rack", "down", "--rack", rack});
  status = nlohmann::json::parse(run({FLEET_SIM, "rack", "status", "--rack", rack, "--json"}));
  for (const auto& b : status) CHECK(b["state"] == "off");

  // Bad input: a usage error naming the option, nothing started.
  auto bad = run({FLEET_SIM, "rack", "up", "-n", "zero", "--rack", rack}, 2);
  CHECK_THAT(bad, Catch::Contains("-n must be a whole number"));
  bad = run({FLEET_SIM, "rack", "up", "-n", "4", "--rack", rack, "--base-port", "30000", "--model-base-port", "30002"}, 2);
  CHECK_THAT(bad, Catch::Contains("--model-base-port 30002 and --base-port 30000 overlap for 4 boards"));
  CHECK_FALSE(std::filesystem::exists(dir / "rack/pi-3"));
}
