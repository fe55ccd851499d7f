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
