#include <sys/stat.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <fstream>
#include <nlohmann/json.hpp>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/text.hpp"
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
  m.build_key = std::string(64, 'a');
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

namespace {
// A manifest whose fields are right but for the one a case changes.
std::string manifest_with(const std::string& field, const nlohmann::json& value) {
  nlohmann::json j = {{"format", 1},
                      {"profile", "qemu-virt"},
                      {"kernel_release", "6.1.192-fleet-qemu"},
                      {"build_key", std::string(64, 'a')},
                      {"image", "boot/kernel_2712.img"},
                      {"cmdline_extra", {"numa=fake=2"}},
                      {"files", {{"boot/kernel_2712.img", {{"sha256", std::string(64, 'b')}, {"size", 1}}}}}};
  if (field.starts_with("files.")) {
    j["files"][field.substr(6)] = value;
  } else {
    j[field] = value;
  }
  return j.dump();
}
}  // namespace

TEST_CASE("bundle: manifest fields are checked") {
  struct Case {
    std::string json;
    const char* expect;
  } cases[] = {
      {R"({"format":2})", "bundle format 2"},
      {R"({"format":4294967297})", "bundle format 4294967297"},  // found by manifest_fuzz: read as 1
      {R"({"format":1,"profile":"p","kernel_release":"r","build_key":")" + std::string(64, 'a') + R"(","image":"boot/i"})",
       "missing field 'files'"},
      {manifest_with("profile", ""), "'profile'"},
      {manifest_with("profile", "../p"), "field 'profile'"},
      // Seen: a build_key of "/../././." emptied the boot partition when the failed install
      // removed its "slot".
      {manifest_with("build_key", "/../././././././././././././././././././././././././././././././"), "field 'build_key'"},
      {manifest_with("build_key", std::string(64, 'A')), "64 lowercase hex"},
      {manifest_with("build_key", std::string(63, 'a')), "field 'build_key'"},
      // Seen: "../../etc" replaced the board's /etc by the bundle's modules.
      {manifest_with("kernel_release", "../../etc"), "field 'kernel_release'"},
      // Seen: boot-check removed an absolute path after a failed trial boot.
      {manifest_with("kernel_release", "/some/abs/path"), "field 'kernel_release'"},
      {manifest_with("kernel_release", ".."), "field 'kernel_release'"},
      {manifest_with("kernel_release", std::string(65, 'x')), "field 'kernel_release'"},
      {manifest_with("kernel_release", "6.1\n"), "field 'kernel_release'"},
      {manifest_with("image", "kernel_2712.img"), "is not under boot/"},
      {manifest_with("image", "boot/../../x"), "field 'image'"},
      {manifest_with("image", "boot/other.img"), "image 'boot/other.img' is not among the files"},
      // Seen: a newline in a word made cmdline.txt two lines.
      {manifest_with("cmdline_extra", {"quiet\ninit=/bin/sh"}), "control character"},
      {manifest_with("cmdline_extra", {"a b"}), "holds a space"},
      {manifest_with("cmdline_extra", {""}), "is empty"},
      {manifest_with("files.../x", {{"sha256", std::string(64, 'b')}, {"size", 1}}), "has a '..' component"},
      {manifest_with("files./etc/passwd", {{"sha256", std::string(64, 'b')}, {"size", 1}}), "is absolute"},
      {manifest_with("files.boot//x", {{"sha256", std::string(64, 'b')}, {"size", 1}}), "empty component"},
      {manifest_with("files.boot/a:b", {{"sha256", std::string(64, 'b')}, {"size", 1}}), "character outside"},
      {manifest_with("files.boot/Kernel_2712.img", {{"sha256", std::string(64, 'b')}, {"size", 1}}),
       "case-insensitive"},
      {manifest_with("files.modules/lib/modules/6.0-other/x.ko", {{"sha256", std::string(64, 'b')}, {"size", 1}}),
       "would never be installed"},
      {manifest_with("files.manifest.sig", {{"sha256", std::string(64, 'b')}, {"size", 1}}), "never lists"},
      {manifest_with("files.boot/x", {{"sha256", "zz"}, {"size", 1}}), "64 lowercase hex"},
      {manifest_with("files.boot/x", {{"sha256", std::string(64, 'b')}, {"size", 1ull << 50}}), "1 TiB"},
  };
  for (const auto& c : cases) {
    INFO(c.json);
    auto m = bundle::parse_manifest(c.json, "b/manifest.json");
    REQUIRE_FALSE(m);
    CHECK(m.error().message.find("b/manifest.json") != std::string::npos);
    CHECK(m.error().message.find(c.expect) != std::string::npos);
    // A message stays on one line whatever the field held.
    CHECK(m.error().message.find('\n') == std::string::npos);
  }
  CHECK(bundle::parse_manifest(manifest_with("format", 1), "ok"));
  // Modules land on ext4: bcm2712_defconfig builds both xt_DSCP.ko and xt_dscp.ko.
  auto j = nlohmann::json::parse(manifest_with("format", 1));
  for (const char* name : {"xt_DSCP.ko.xz", "xt_dscp.ko.xz"}) {
    j["files"]["modules/lib/modules/6.1.192-fleet-qemu/kernel/net/netfilter/" + std::string(name)] = {
        {"sha256", std::string(64, 'c')}, {"size", 1}};
  }
  CHECK(bundle::parse_manifest(j.dump(), "modules"));
}

TEST_CASE("bundle: name checks") {
  CHECK(bundle::is_kernel_release("6.12.48+rpt-rpi-2712"));
  CHECK(bundle::is_kernel_release("6.1.192-fleet-qemu_1"));
  CHECK_FALSE(bundle::is_kernel_release("."));
  CHECK_FALSE(bundle::is_kernel_release("a/b"));
  CHECK_FALSE(bundle::is_kernel_release(""));
  CHECK(bundle::bundle_path_problem("modules/lib/modules/6.1/kernel/drivers/net/dummy.ko").empty());
  CHECK(bundle::bundle_path_problem("boot/overlays/vc4-kms-v3d-pi5.dtbo").empty());
  CHECK_FALSE(bundle::bundle_path_problem("boot/").empty());
  CHECK_FALSE(bundle::bundle_path_problem("boot/./x").empty());
  CHECK(text::command_word_problem("numa_policy=interleave").empty());
  CHECK_FALSE(text::command_word_problem("a\tb").empty());
  CHECK_FALSE(text::command_word_problem("\x7f").empty());
}

TEST_CASE("bundle: anything but regular files and folders is refused before it is read") {
  test::TempDir dir;
  make_bundle(dir);
  SECTION("a FIFO does not block the walk") {
    REQUIRE(::mkfifo((dir / "boot/fifo").c_str(), 0644) == 0);
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().message.find("boot/fifo is a FIFO") != std::string::npos);
  }
  SECTION("a hard link") {
    REQUIRE(::link((dir / "boot/kernel_2712.img").c_str(), (dir / "boot/linked").c_str()) == 0);
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().message.find("hard links") != std::string::npos);
  }
  SECTION("a setuid file") {
    REQUIRE(::chmod((dir / "boot/kernel_2712.img").c_str(), 04755) == 0);
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().message.find("setuid") != std::string::npos);
  }
  SECTION("a symlink") {
    std::filesystem::create_symlink("/etc/passwd", dir / "boot/link");
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    INFO(v.error().message);
    CHECK(v.error().message.find("boot/link is a symlink") != std::string::npos);
  }
  SECTION("a manifest.json that is a FIFO") {
    std::filesystem::remove(dir / bundle::k_manifest);
    REQUIRE(::mkfifo((dir / bundle::k_manifest).c_str(), 0644) == 0);
    auto v = bundle::verify(dir.path());
    REQUIRE_FALSE(v);
    CHECK(v.error().message.find("FIFO") != std::string::npos);
  }
}

TEST_CASE("fs::read_regular_file refuses what is not a plain file, as opened") {
  test::TempDir dir;
  dir.write("f", "data");
  CHECK(fs::read_regular_file(dir / "f") == "data");
  REQUIRE(::mkfifo((dir / "fifo").c_str(), 0644) == 0);
  auto r = fs::read_regular_file(dir / "fifo");
  REQUIRE_FALSE(r);
  CHECK(r.error().message.find("is a FIFO") != std::string::npos);
  CHECK_FALSE(fs::read_regular_file("/dev/zero"));
  std::filesystem::create_symlink(dir / "f", dir / "l");
  CHECK_FALSE(fs::read_regular_file(dir / "l"));
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
