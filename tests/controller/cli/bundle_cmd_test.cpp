#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <nlohmann/json.hpp>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "controller/cli/cli.hpp"
#include "tests/support/cli.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

test::CliResult fleetctl(const std::vector<std::string>& args) {
  return test::run_cli(controller::cli::run, args);
}

std::string make_bundle(const test::TempDir& dir) {
  dir.write("b/boot/Image", "kernel");
  dir.write("b/contract.json", "{}");
  bundle::Manifest m;
  m.profile = "qemu-virt";
  m.kernel_release = "6.1-x";
  m.build_key = std::string(64, 'a');
  m.image = "boot/Image";
  REQUIRE(bundle::hash_tree(dir / "b", m));
  REQUIRE(fs::write_file_atomic(dir / "b" / bundle::k_manifest, bundle::manifest_to_json(m)));
  return (dir / "b").string();
}

}  // namespace

TEST_CASE("fleetctl bundle keygen, sign, verify: a signed bundle verifies with its key only") {
  test::TempDir dir;
  const auto b = make_bundle(dir);
  const auto key = (dir / "release").string(), other = (dir / "other").string();

  auto gen = fleetctl({"bundle", "keygen", "--out", key, "--json"});
  INFO(gen.err);
  REQUIRE(gen.code == 0);
  const auto id = nlohmann::json::parse(gen.out)["key_id"].get<std::string>();
  CHECK(id.size() == 16);
  struct stat st{};
  REQUIRE(::stat(key.c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
  CHECK(std::filesystem::exists(key + ".pub"));
  REQUIRE(fleetctl({"bundle", "keygen", "--out", other}).code == 0);

  auto again = fleetctl({"bundle", "keygen", "--out", key});
  CHECK(again.code == 2);
  CHECK_THAT(again.err, Catch::Contains("exists; not replaced"));

  auto unsigned_verify = fleetctl({"bundle", "verify", b});
  CHECK(unsigned_verify.code == 0);
  CHECK_THAT(unsigned_verify.out, Catch::Contains("not signed"));
  auto unsigned_trusted = fleetctl({"bundle", "verify", b, "--trust-key", key + ".pub"});
  CHECK(unsigned_trusted.code == 1);
  CHECK_THAT(unsigned_trusted.err, Catch::Contains("is not signed"));

  auto signed_ = fleetctl({"bundle", "sign", b, "--key", key});
  INFO(signed_.err);
  REQUIRE(signed_.code == 0);
  CHECK_THAT(signed_.out, Catch::Contains("signed by key " + id));

  auto good = fleetctl({"bundle", "verify", b, "--trust-key", key + ".pub", "--json"});
  REQUIRE(good.code == 0);
  auto j = nlohmann::json::parse(good.out);
  CHECK(j["signed"] == true);
  CHECK(j["signature_checked"] == true);
  CHECK(j["key_id"] == id);

  auto wrong = fleetctl({"bundle", "verify", b, "--trust-key", other + ".pub"});
  CHECK(wrong.code == 1);
  CHECK_THAT(wrong.err, Catch::Contains("signed by key " + id + ", which is not trusted"));

  auto private_as_trust = fleetctl({"bundle", "verify", b, "--trust-key", key});
  CHECK(private_as_trust.code == 2);
  CHECK_THAT(private_as_trust.err, Catch::Contains("private key"));

  dir.write("b/boot/Image", "tampered");
  auto tampered = fleetctl({"bundle", "verify", b, "--trust-key", key + ".pub"});
  CHECK(tampered.code == 1);
  CHECK_THAT(tampered.err, Catch::Contains("boot/Image"));
}

TEST_CASE("fleetctl bundle: usage errors say what is missing") {
  CHECK(fleetctl({"bundle"}).code == 2);
  auto unknown = fleetctl({"bundle", "stamp"});
  CHECK(unknown.code == 2);
  CHECK_THAT(unknown.err, Catch::Contains("unknown subcommand 'stamp'"));
  CHECK_THAT(unknown.err, Catch::Contains("keygen|sign|verify"));
  auto help = fleetctl({"bundle", "--help"});
  CHECK(help.code == 0);
  CHECK_THAT(help.out, Catch::Contains("verify BUNDLE"));
  auto no_key = fleetctl({"bundle", "sign", "/tmp/x"});
  CHECK(no_key.code == 2);
  CHECK_THAT(no_key.err, Catch::Contains("--key FILE"));
  auto sign_help = fleetctl({"bundle", "sign", "--help"});
  CHECK(sign_help.code == 0);
  CHECK_THAT(sign_help.out, Catch::Contains("manifest.sig"));
  auto missing_key = fleetctl({"bundle", "sign", "/tmp/x", "--key", "/nonexistent/key"});
  CHECK(missing_key.code == 2);
  CHECK_THAT(missing_key.err, Catch::Contains("/nonexistent/key"));
}

TEST_CASE("fleetctl kernel build --sign-key checks the key before it builds anything") {
  test::TempDir dir;
  REQUIRE(fleetctl({"bundle", "keygen", "--out", (dir / "k").string()}).code == 0);
  auto r = fleetctl({"kernel", "build", "--profile", "qemu-virt", "--out", (dir / "out").string(), "--cache",
                     (dir / "cache").string(), "--sign-key", (dir / "k.pub").string()});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--sign-key"));
  CHECK_THAT(r.err, Catch::Contains((dir / "k.pub").string()));
  CHECK_FALSE(std::filesystem::exists(dir / "out"));
  CHECK_FALSE(std::filesystem::exists(dir / "cache"));
}

TEST_CASE("fleetctl kernel build --config-only --sign-key is refused: there is no bundle to sign") {
  test::TempDir dir;
  REQUIRE(fleetctl({"bundle", "keygen", "--out", (dir / "k").string()}).code == 0);
  auto r = fleetctl({"kernel", "build", "--profile", "qemu-virt", "--out", (dir / "out").string(), "--cache",
                     (dir / "cache").string(), "--config-only", "--sign-key", (dir / "k").string()});
  CHECK(r.code == 2);
  CHECK_THAT(r.err, Catch::Contains("--config-only makes no bundle"));
  CHECK_FALSE(std::filesystem::exists(dir / "cache"));
}
