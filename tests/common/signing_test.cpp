#include <catch2/catch.hpp>

#include "common/signing.hpp"

using namespace fleet;

TEST_CASE("signing: a signature verifies with its key and no other, and not over other bytes") {
  auto a = signing::generate();
  auto b = signing::generate();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->id.size() == 16);
  CHECK(a->id != b->id);
  auto pub_a = signing::parse_public(a->public_pem, "a.pub");
  auto pub_b = signing::parse_public(b->public_pem, "b.pub");
  REQUIRE(pub_a);
  REQUIRE(pub_b);
  CHECK(pub_a->id == a->id);
  CHECK(signing::private_key_id(a->private_pem, "a") == a->id);

  const std::string message = "{\"files\": {\"boot/Image\": \"ab12\"}}\n";
  auto sig = signing::sign(a->private_pem, "a", message);
  REQUIRE(sig);
  CHECK(sig->size() == 64);
  CHECK(signing::verify(*pub_a, message, *sig));

  auto other_key = signing::verify(*pub_b, message, *sig);
  REQUIRE_FALSE(other_key);
  CHECK(other_key.error().code == Errc::mismatch);
  CHECK(other_key.error().message.find(b->id) != std::string::npos);

  std::string changed = message;
  changed[20] = 'X';
  CHECK_FALSE(signing::verify(*pub_a, changed, *sig));
  std::string flipped = *sig;
  flipped[5] = char(flipped[5] ^ 1);
  CHECK_FALSE(signing::verify(*pub_a, message, flipped));
  CHECK_FALSE(signing::verify(*pub_a, message, sig->substr(0, 63)));
}

TEST_CASE("signing: keys that are not Ed25519 public keys are refused, naming the file") {
  auto a = signing::generate();
  REQUIRE(a);
  auto priv = signing::parse_public(a->private_pem, "keys/release.pem");
  REQUIRE_FALSE(priv);
  CHECK(priv.error().message.find("keys/release.pem") != std::string::npos);
  CHECK(priv.error().message.find("private key") != std::string::npos);

  auto junk = signing::parse_public("-----BEGIN PUBLIC KEY-----\nAAAA\n-----END PUBLIC KEY-----\n", "junk.pub");
  REQUIRE_FALSE(junk);
  CHECK(junk.error().message.find("junk.pub") != std::string::npos);

  // An EC P-256 public key (openssl ecparam -name prime256v1 -genkey | openssl ec -pubout).
  const char* p256 =
      "-----BEGIN PUBLIC KEY-----\n"
      "MFkwEwYHKoZIzj0CAQYIKoZIzj0DAQcDQgAEKtOF+rONAo1KvaNJdrXadNIcbRBr\n"
      "1UtSz+41YbLK8ZQH2zfsRGxuG0XSow++fRDeDDOpGRpOTCGxsqx76d/d2A==\n"
      "-----END PUBLIC KEY-----\n";
  auto ec = signing::parse_public(p256, "p256.pub");
  REQUIRE_FALSE(ec);
  CHECK(ec.error().code == Errc::unsupported);
  CHECK(ec.error().message.find("Ed25519") != std::string::npos);

  auto sign_with_public = signing::sign(a->public_pem, "a.pub", "x");
  REQUIRE_FALSE(sign_with_public);
  CHECK(sign_with_public.error().message.find("a.pub") != std::string::npos);
}

TEST_CASE("signing: base64 round-trips every length and refuses malformed text") {
  std::string bytes;
  for (int n = 0; n < 70; ++n) {
    auto back = signing::base64_decode(signing::base64_encode(bytes));
    REQUIRE(back);
    CHECK(*back == bytes);
    bytes.push_back(char(n * 37));
  }
  CHECK(signing::base64_encode("foobar") == "Zm9vYmFy");
  CHECK(signing::base64_encode("fo") == "Zm8=");
  CHECK_FALSE(signing::base64_decode("Zm9"));
  CHECK_FALSE(signing::base64_decode("Zm9v!mFy"));
  CHECK_FALSE(signing::base64_decode("Zm=v"));
  CHECK_FALSE(signing::base64_decode("Z==="));
  CHECK_FALSE(signing::base64_decode("Zm8=Zm8="));
}
