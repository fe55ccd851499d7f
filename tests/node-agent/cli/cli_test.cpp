#include <catch2/catch.hpp>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/signing.hpp"
#include "controller/tls/authority.hpp"
#include "node-agent/cli/cli.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.pb.h"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

test::CliResult fleet_agent(const std::vector<std::string>& args) { return test::run_cli(fleet::agent::cli::run, args); }

// A folder shaped like a board's root: a Pi boot partition and a running kernel.
void write_board(const test::TempDir& root) {
  root.write("boot/firmware/config.txt", "[all]\nkernel=kernel_2712.img\n");
  root.write("boot/firmware/cmdline.txt", "console=ttyAMA0 root=/dev/mmcblk0p2\n");
  root.write("proc/sys/kernel/osrelease", "6.1.0-stock\n");
}

std::filesystem::path write_bundle(const test::TempDir& dir) {
  dir.write("b/boot/kernel_2712.img", "kernel");
  dir.write("b/contract.json",
            R"({"kernel_release":"6.1-new","page_size":16384,"thp":"madvise","numa_nodes":2,"hz":100,"tick":"NO_HZ_IDLE","headless":true})");
  bundle::Manifest m;
  m.profile = "test";
  m.kernel_release = "6.1-new";
  m.build_key = std::string(64, 'a');
  m.image = "boot/kernel_2712.img";
  REQUIRE(bundle::hash_tree(dir / "b", m));
  REQUIRE(fs::write_file_atomic(dir / "b" / bundle::k_manifest, bundle::manifest_to_json(m)));
  return dir / "b";
}

}  // namespace

TEST_CASE("fleet-agent setup --trust-key: install then takes only bundles that key signed") {
  test::TempDir root{"fleet-board"}, work;
  write_board(root);
  auto release = signing::generate();
  REQUIRE(release);
  const auto pub = work.write("release.pub", release->public_pem);
  const auto b = write_bundle(work);
  const auto ca = tls::Authority::open_or_create(work / "tls").value();
  const std::vector<std::string> ids = {"--board-id", "pi-1", "--controller", "10.0.2.2:50051", "--token", "t",
                                        "--ca", ca.certificate_file().string()};

  auto bad = fleet_agent({"setup", "--root", root.path().string(), ids[0], ids[1], ids[2], ids[3], ids[4], ids[5],
                    ids[6], ids[7], "--trust-key", work.write("release.pem", release->private_pem).string()});
  CHECK(bad.code == 2);
  CHECK_THAT(bad.err, Catch::Contains("release.pem"));
  CHECK_THAT(bad.err, Catch::Contains("private key"));

  auto setup = fleet_agent({"setup", "--root", root.path().string(), ids[0], ids[1], ids[2], ids[3], ids[4], ids[5],
                      ids[6], ids[7], "--trust-key", pub.string()});
  INFO(setup.err);
  REQUIRE(setup.code == 0);
  CHECK_THAT(setup.out, Catch::Contains("trusted key " + release->id));
  CHECK(fs::read_file(root / ("etc/fleet-agent/trusted-keys/" + release->id + ".pem")) == release->public_pem);

  auto refused = fleet_agent({"install", "--root", root.path().string(), "--bundle", b.string()});
  CHECK(refused.code == 1);
  CHECK_THAT(refused.err, Catch::Contains("is not signed"));
  CHECK_THAT(refused.err, Catch::Contains("nothing was changed"));
  CHECK_FALSE(std::filesystem::exists(root / "boot/firmware/tryboot.txt"));

  auto status = fleet_agent({"status", "--root", root.path().string()});
  CHECK_THAT(status.out, Catch::Contains("trusted:   bundles signed by " + release->id));

  REQUIRE(bundle::sign(b, release->private_pem, "release.pem"));
  auto installed = fleet_agent({"install", "--root", root.path().string(), "--bundle", b.string()});
  INFO(installed.err);
  CHECK(installed.code == 0);
  CHECK_THAT(installed.out, Catch::Contains("signature checked"));
  CHECK(std::filesystem::exists(root / "boot/firmware/tryboot.txt"));

  // What the controller reads: fleet.v1.AgentStatus through the one codec.
  auto json = fleet_agent({"status", "--root", root.path().string(), "--json"});
  INFO(json.out << json.err);
  REQUIRE(json.code == 0);
  auto st = wire::parse<fleet::v1::AgentStatus>(json.out, "fleet-agent status --json");
  REQUIRE(st);
  CHECK(st->state() == fleet::v1::AGENT_INSTALLED);
  CHECK(st->committed().release() == "6.1.0-stock");
  CHECK(st->target().slot().release() == "6.1-new");
  CHECK(st->target().build_key() == std::string(64, 'a'));
  CHECK(st->running_release() == "6.1.0-stock");
  REQUIRE(st->trusted_keys_size() == 1);
  CHECK(st->trusted_keys(0) == release->id);
  CHECK(st->trust_error().empty());
  CHECK_FALSE(st->version().empty());
  CHECK(st->sequence() == 1);  // the INSTALLED report
}

TEST_CASE("fleet-agent install names a damaged trusted key instead of installing") {
  test::TempDir root{"fleet-board"}, work;
  write_board(root);
  root.write("etc/fleet-agent/trusted-keys/old.pem", "not a key");
  auto r = fleet_agent({"install", "--root", root.path().string(), "--bundle", write_bundle(work).string()});
  CHECK(r.code != 0);
  CHECK_THAT(r.err, Catch::Contains("trusted-keys/old.pem"));
  CHECK_FALSE(std::filesystem::exists(root / "boot/firmware/tryboot.txt"));
}

TEST_CASE("fleet-agent setup --ca installs the controller's CA, and refuses anything but one CA certificate before writing") {
  test::TempDir root{"fleet-board"}, work;
  write_board(root);
  const auto ca = tls::Authority::open_or_create(work / "tls").value();
  const auto server_cert = work.write("server.pem", ca.issue_server().value().cert_pem);
  const std::vector<std::string> base = {"setup", "--root", root.path().string(), "--board-id", "pi-1",
                                         "--controller", "10.0.2.2:50051", "--token", "t"};
  auto with = [&](std::vector<std::string> more) {
    auto argv = base;
    argv.insert(argv.end(), more.begin(), more.end());
    return fleet_agent(argv);
  };
  struct Row {
    std::vector<std::string> args;
    const char* message;
  };
  const std::vector<Row> rows = {
      {{}, "--ca are required"},
      {{"--ca", server_cert.string()}, "not a CA certificate"},
      {{"--ca", (work / "tls/ca.key").string()}, "not a PEM certificate"},
      {{"--ca", (work / "missing.pem").string()}, "missing.pem"},
  };
  for (const auto& row : rows) {
    auto r = with(row.args);
    INFO(r.err);
    CHECK(r.code == 2);
    CHECK_THAT(r.err, Catch::Contains(row.message));
    CHECK_FALSE(std::filesystem::exists(root / "etc/fleet-agent"));
  }
  // Without a CA on the board the agent sends nothing, and says why.
  auto unset = fleet_agent({"send-reports", "--root", root.path().string()});
  CHECK(unset.code == 2);

  auto ok = with({"--ca", ca.certificate_file().string()});
  INFO(ok.err);
  REQUIRE(ok.code == 0);
  CHECK_THAT(ok.out, Catch::Contains("over TLS") && Catch::Contains(ca.certificate().subject));
  CHECK(fs::read_file(root / "etc/fleet-agent/ca.pem").value() == ca.certificate().pem);

  std::filesystem::remove(root / "etc/fleet-agent/ca.pem");
  auto no_ca = fleet_agent({"send-reports", "--root", root.path().string()});
  CHECK(no_ca.code == 2);
  CHECK_THAT(no_ca.err, Catch::Contains("ca.pem: no such file") && Catch::Contains("setup --ca"));
}
