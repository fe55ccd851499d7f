#include <catch2/catch.hpp>
#include <fstream>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

bundle::Manifest make_bundle(const test::TempDir& dir) {
  dir.write("boot/kernel_2712.img", "kernel bytes");
  dir.write("contract.json", "{}");
  dir.write("modules/lib/modules/6.1-x/modules.dep", "");
  dir.write("build.log", "not part of the bundle");
  bundle::Manifest m;
  m.profile = "qemu-virt";
  m.kernel_release = "6.1-x";
  m.build_key = "k";
  m.image = "boot/kernel_2712.img";
  m.cmdline_extra = {"console=ttyAMA0"};
  REQUIRE(bundle::hash_tree(dir.path(), m));
  REQUIRE(fs::write_file_atomic(dir / bundle::k_manifest, bundle::manifest_to_json(m)));
  return m;
}

}  // namespace

TEST_CASE("bundle: a fresh bundle verifies, build.log is not part of it") {
  test::TempDir dir;
  auto m = make_bundle(dir);
  CHECK(m.files.size() == 3);
  CHECK_FALSE(m.files.contains("build.log"));
  auto v = bundle::verify(dir.path());
  REQUIRE(v);
  CHECK(v->kernel_release == "6.1-x");
  CHECK(v->cmdline_extra == std::vector<std::string>{"console=ttyAMA0"});
  CHECK(v->files.at("boot/kernel_2712.img").sha256 == hash::sha256_hex("kernel bytes"));
  CHECK(v->files.at("boot/kernel_2712.img").size == 12);
}

TEST_CASE("bundle: a changed, missing or extra file is named") {
  test::TempDir dir;
  make_bundle(dir);
  SECTION("changed") {
    dir.write("boot/kernel_2712.img", "kernel bytez");
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().code == Errc::mismatch);
    CHECK(v.error().message.find("boot/kernel_2712.img") != std::string::npos);
  }
  SECTION("missing") {
    std::filesystem::remove(dir / "contract.json");
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().code == Errc::not_found);
    CHECK(v.error().message.find("contract.json") != std::string::npos);
  }
  SECTION("extra") {
    dir.write("boot/evil.img", "x");
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().message.find("boot/evil.img") != std::string::npos);
  }
}

TEST_CASE("bundle: manifest fields are checked") {
  struct Case {
    const char* json;
    const char* expect;
  } cases[] = {
      {R"({"format":2})", "bundle format 2"},
      {R"({"format":1,"profile":"p","kernel_release":"r","build_key":"k","image":"i"})", "missing field 'files'"},
      {R"({"format":1,"profile":"","kernel_release":"r","build_key":"k","image":"i","files":{}})", "'profile'"},
      {R"({"format":1,"profile":"p","kernel_release":"r","build_key":"k","image":"i","files":{"../x":{"sha256":"a","size":1}}})",
       "unsafe path '../x'"},
      {R"({"format":1,"profile":"p","kernel_release":"r","build_key":"k","image":"i","files":{}})",
       "image 'i' is not among the files"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto m = bundle::parse_manifest(c.json, "b/manifest.json");
    REQUIRE_FALSE(m);
    CHECK(m.error().message.find("b/manifest.json") != std::string::npos);
    CHECK(m.error().message.find(c.expect) != std::string::npos);
  }
}

TEST_CASE("bundle: a signed bundle names its key, and is refused unsigned, by another key or changed") {
  test::TempDir dir;
  make_bundle(dir);
  auto release = signing::generate();
  auto other = signing::generate();
  REQUIRE(release);
  REQUIRE(other);
  const auto trusted = std::vector{*signing::parse_public(release->public_pem, "release.pub")};
  const auto untrusted = std::vector{*signing::parse_public(other->public_pem, "other.pub")};

  auto unsigned_bundle = bundle::check_signature(dir.path(), trusted);
  REQUIRE_FALSE(unsigned_bundle);
  CHECK(unsigned_bundle.error().message.find("is not signed") != std::string::npos);
  CHECK(unsigned_bundle.error().message.find(release->id) != std::string::npos);

  auto id = bundle::sign(dir.path(), release->private_pem, "release.pem");
  REQUIRE(id);
  CHECK(*id == release->id);
  CHECK(bundle::verify(dir.path()));  // the signature file is not part of what it signs
  CHECK(bundle::check_signature(dir.path(), trusted) == release->id);

  auto by_other = bundle::check_signature(dir.path(), untrusted);
  REQUIRE_FALSE(by_other);
  CHECK(by_other.error().message.find("signed by key " + release->id + ", which is not trusted") != std::string::npos);

  SECTION("the manifest changed after signing") {
    auto text = fs::read_file(dir / bundle::k_manifest);
    REQUIRE(text);
    REQUIRE(fs::write_file_atomic(dir / bundle::k_manifest, *text + " "));
    auto changed = bundle::check_signature(dir.path(), trusted);
    REQUIRE_FALSE(changed);
    CHECK(changed.error().code == Errc::mismatch);
    CHECK(changed.error().message.find("does not verify") != std::string::npos);
  }
  SECTION("a damaged signature file") {
    dir.write(bundle::k_signature, "{\"algorithm\": \"ed25519\", \"key_id\": \"" + release->id + "\", \"signature\": \"AAAA\"}");
    auto damaged = bundle::check_signature(dir.path(), trusted);
    REQUIRE_FALSE(damaged);
    CHECK(damaged.error().message.find("64") != std::string::npos);
    CHECK(damaged.error().message.find(bundle::k_signature) != std::string::npos);
  }
  SECTION("a bundle file changed: the signature still holds, verify() names the file") {
    dir.write("boot/kernel_2712.img", "other kernel");
    CHECK(bundle::check_signature(dir.path(), trusted));
    CHECK_FALSE(bundle::verify(dir.path()));
  }
  SECTION("signing needs a bundle that verifies") {
    dir.write("boot/extra.dtb", "x");
    auto refused = bundle::sign(dir.path(), release->private_pem, "release.pem");
    REQUIRE_FALSE(refused);
    CHECK(refused.error().message.find("boot/extra.dtb") != std::string::npos);
  }
}

TEST_CASE("bundle: trusted keys are every .pem of a folder, a bad one is named") {
  test::TempDir dir;
  auto none = bundle::load_trusted_keys(dir / "absent");
  REQUIRE(none);
  CHECK(none->empty());
  auto a = signing::generate();
  REQUIRE(a);
  dir.write("keys/a.pem", a->public_pem);
  dir.write("keys/README", "not a key");
  auto one = bundle::load_trusted_keys(dir / "keys");
  REQUIRE(one);
  REQUIRE(one->size() == 1);
  CHECK(one->front().id == a->id);
  dir.write("keys/b.pem", "garbage");
  auto bad = bundle::load_trusted_keys(dir / "keys");
  REQUIRE_FALSE(bad);
  CHECK(bad.error().message.find("b.pem") != std::string::npos);
}
