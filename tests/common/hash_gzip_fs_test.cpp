#include <zlib.h>

#include <catch2/catch.hpp>

#include "common/fs.hpp"
#include "common/gzip.hpp"
#include "common/hash.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

std::string gzip_compress(const std::string& in) {
  z_stream zs{};
  deflateInit2(&zs, Z_BEST_COMPRESSION, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY);
  std::string out(deflateBound(&zs, in.size()) + 32, '\0');
  zs.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(in.data()));
  zs.avail_in = static_cast<uInt>(in.size());
  zs.next_out = reinterpret_cast<Bytef*>(out.data());
  zs.avail_out = static_cast<uInt>(out.size());
  deflate(&zs, Z_FINISH);
  out.resize(zs.total_out);
  deflateEnd(&zs);
  return out;
}

}  // namespace

TEST_CASE("sha256 matches the FIPS 180-2 test vectors") {
  CHECK(hash::sha256_hex("abc") == "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
  CHECK(hash::sha256_hex("") == "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855");
}

TEST_CASE("sha256_file equals sha256 of the content, and names a missing file") {
  test::TempDir dir;
  auto p = dir.write("f", "abc");
  CHECK(hash::sha256_file(p).value() == hash::sha256_hex("abc"));
  auto missing = hash::sha256_file(dir / "nope");
  REQUIRE_FALSE(missing);
  CHECK(missing.error().message.find("nope") != std::string::npos);
}

TEST_CASE("gzip: round trip of a config-sized text, truncated input refused") {
  std::string text;
  for (int i = 0; i < 3000; ++i) text += "CONFIG_SYMBOL_" + std::to_string(i) + "=y\n";
  auto gz = gzip_compress(text);
  auto back = gzip::decompress(gz);
  REQUIRE(back);
  CHECK(*back == text);
  CHECK_FALSE(gzip::decompress(gz.substr(0, gz.size() / 2)));
  CHECK_FALSE(gzip::decompress("not gzip at all"));
}

TEST_CASE("write_file_atomic replaces the file and leaves no temporary behind") {
  test::TempDir dir;
  auto p = dir / "config.txt";
  REQUIRE(fs::write_file_atomic(p, "one"));
  REQUIRE(fs::write_file_atomic(p, "two"));
  CHECK(fs::read_file(p).value() == "two");
  int files = 0;
  for ([[maybe_unused]] auto& e : std::filesystem::directory_iterator(dir.path())) ++files;
  CHECK(files == 1);
}

TEST_CASE("write_file_atomic into a missing folder fails and says where") {
  test::TempDir dir;
  auto r = fs::write_file_atomic(dir / "no/such/dir/file", "x");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::io);
  CHECK(r.error().message.find("no/such/dir") != std::string::npos);
}

TEST_CASE("read_file: not_found for a missing file") {
  auto r = fs::read_file("/nonexistent/fleet/file");
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::not_found);
}
