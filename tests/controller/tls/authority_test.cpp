#include <openssl/bio.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <sys/stat.h>

#include <catch2/catch.hpp>
#include <thread>

#include "common/fs.hpp"
#include "common/tls.hpp"
#include "controller/tls/authority.hpp"
#include "controller/tls/secret.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;

namespace {

unsigned mode_of(const std::filesystem::path& p) {
  struct stat st{};
  REQUIRE(::stat(p.c_str(), &st) == 0);
  return st.st_mode & 07777;
}

X509* read_cert(const std::string& pem) {
  BIO* b = BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size()));
  X509* x = PEM_read_bio_X509(b, nullptr, nullptr, nullptr);
  BIO_free(b);
  return x;
}

// What a TLS client does with a server's certificate: chain to the CA alone, check the name.
int verify(const std::string& ca_pem, const std::string& cert_pem, const char* host) {
  X509* ca = read_cert(ca_pem);
  X509* cert = read_cert(cert_pem);
  X509_STORE* store = X509_STORE_new();
  X509_STORE_add_cert(store, ca);
  X509_STORE_CTX* ctx = X509_STORE_CTX_new();
  X509_STORE_CTX_init(ctx, store, cert, nullptr);
  X509_VERIFY_PARAM_set1_host(X509_STORE_CTX_get0_param(ctx), host, 0);
  X509_STORE_CTX_set_purpose(ctx, X509_PURPOSE_SSL_SERVER);
  int ok = X509_verify_cert(ctx);
  int err = ok == 1 ? X509_V_OK : X509_STORE_CTX_get_error(ctx);
  X509_STORE_CTX_free(ctx);
  X509_STORE_free(store);
  X509_free(cert);
  X509_free(ca);
  return err;
}

}  // namespace

TEST_CASE("the controller's CA is made on first use, its key 0600, and found again") {
  test::TempDir dir;
  const auto tls_dir = dir / "state/tls";
  auto first = tls::Authority::open_or_create(tls_dir);
  REQUIRE(first);
  CHECK(first->created_now());
  CHECK(mode_of(tls_dir / "ca.key") == 0600);
  CHECK(mode_of(tls_dir) == 0700);
  CHECK_THAT(first->certificate().subject, Catch::StartsWith("CN=fleetctl CA "));
  CHECK(first->certificate().fingerprint.size() == 64);
  auto again = tls::Authority::open_or_create(tls_dir);
  REQUIRE(again);
  CHECK_FALSE(again->created_now());
  CHECK(again->certificate().fingerprint == first->certificate().fingerprint);
  // Nothing left behind by the making (the temporary folder was renamed into place).
  int entries = 0;
  for ([[maybe_unused]] const auto& e : std::filesystem::directory_iterator(dir / "state")) ++entries;
  CHECK(entries == 1);
}

TEST_CASE("two fleetctl processes making the CA at once agree on one") {
  test::TempDir dir;
  std::string a, b;
  std::thread t1([&] {
    if (auto r = tls::Authority::open_or_create(dir / "tls")) a = r->certificate().fingerprint;
  });
  std::thread t2([&] {
    if (auto r = tls::Authority::open_or_create(dir / "tls")) b = r->certificate().fingerprint;
  });
  t1.join();
  t2.join();
  CHECK_FALSE(a.empty());
  CHECK(a == b);
}

TEST_CASE("a CA key others can read is refused, and so is a key that is not the certificate's") {
  test::TempDir dir;
  REQUIRE(tls::Authority::open_or_create(dir / "tls"));
  std::filesystem::permissions(dir / "tls/ca.key", std::filesystem::perms::group_read, std::filesystem::perm_options::add);
  auto loose = tls::Authority::open_or_create(dir / "tls");
  REQUIRE_FALSE(loose);
  CHECK(loose.error().code == Errc::invalid_input);
  CHECK_THAT(loose.error().message, Catch::Contains("ca.key") && Catch::Contains("0640"));

  test::TempDir other;
  REQUIRE(tls::Authority::open_or_create(other / "tls"));
  std::filesystem::remove(dir / "tls/ca.key");
  std::filesystem::copy_file(other / "tls/ca.key", dir / "tls/ca.key");
  std::filesystem::permissions(dir / "tls/ca.key", std::filesystem::perms::owner_read | std::filesystem::perms::owner_write);
  auto mixed = tls::Authority::open_or_create(dir / "tls");
  REQUIRE_FALSE(mixed);
  CHECK(mixed.error().code == Errc::mismatch);
  CHECK_THAT(mixed.error().message, Catch::Contains("is not the key of"));
}

TEST_CASE("a server certificate chains to its CA alone and carries the controller's name") {
  test::TempDir dir, other_dir;
  auto ca = tls::Authority::open_or_create(dir / "tls").value();
  auto other = tls::Authority::open_or_create(other_dir / "tls").value();
  auto id = ca.issue_server();
  REQUIRE(id);
  CHECK_THAT(id->key_pem, Catch::StartsWith("-----BEGIN PRIVATE KEY-----"));
  const std::string name(tls::k_controller_name);
  CHECK(verify(ca.certificate().pem, id->cert_pem, name.c_str()) == X509_V_OK);
  CHECK(verify(ca.certificate().pem, id->cert_pem, "localhost") == X509_V_OK);
  CHECK(verify(ca.certificate().pem, id->cert_pem, "evil.example") == X509_V_ERR_HOSTNAME_MISMATCH);
  CHECK(verify(other.certificate().pem, id->cert_pem, name.c_str()) == X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY);
  // Each start gets its own key.
  CHECK(ca.issue_server().value().key_pem != id->key_pem);
}

TEST_CASE("only one self-signed CA certificate is taken as the controller's CA") {
  test::TempDir dir;
  auto ca = tls::Authority::open_or_create(dir / "tls").value();
  auto ok = tls::parse_ca_certificate(ca.certificate().pem, "ca.pem");
  REQUIRE(ok);
  CHECK(ok->fingerprint == ca.certificate().fingerprint);
  auto server = ca.issue_server().value();
  struct Row {
    const char* what;
    std::string pem;
    const char* message;
  };
  const std::vector<Row> rows = {
      {"a server certificate", server.cert_pem, "not a CA certificate"},
      {"a private key", server.key_pem, "not a PEM certificate"},
      {"two certificates", ca.certificate().pem + ca.certificate().pem, "more than one certificate"},
      {"garbage", "hello\n", "not a PEM certificate"},
      {"nothing", "", "not a PEM certificate"},
  };
  for (const auto& row : rows) {
    INFO(row.what);
    auto r = tls::parse_ca_certificate(row.pem, "/tmp/x.pem");
    REQUIRE_FALSE(r);
    CHECK_THAT(r.error().message, Catch::Contains("/tmp/x.pem") && Catch::Contains(row.message));
  }
}

TEST_CASE("tokens: random, compared in constant time, kept in a 0600 file made once") {
  auto a = tls::random_token();
  auto b = tls::random_token();
  REQUIRE(a);
  REQUIRE(b);
  CHECK(a->size() == 32);
  CHECK(*a != *b);
  CHECK(tls::same_secret(*a, std::string(*a)));
  CHECK_FALSE(tls::same_secret(*a, *b));
  CHECK_FALSE(tls::same_secret(*a, a->substr(0, 31)));
  CHECK_FALSE(tls::same_secret("", ""));

  test::TempDir dir;
  bool made = false;
  auto t = tls::read_or_create_token(dir / "state/status.token", &made);
  REQUIRE(t);
  CHECK(made);
  CHECK(mode_of(dir / "state/status.token") == 0600);
  auto again = tls::read_or_create_token(dir / "state/status.token", &made);
  REQUIRE(again);
  CHECK_FALSE(made);
  CHECK(*again == *t);
  std::filesystem::permissions(dir / "state/status.token", std::filesystem::perms::others_read,
                               std::filesystem::perm_options::add);
  auto loose = tls::read_or_create_token(dir / "state/status.token");
  REQUIRE_FALSE(loose);
  CHECK_THAT(loose.error().message, Catch::Contains("0604"));

  // A new private file is 0600 whatever the umask, and never replaces one.
  const auto f = dir / "key";
  REQUIRE(tls::write_new_private_file(f, "secret"));
  CHECK(mode_of(f) == 0600);
  auto twice = tls::write_new_private_file(f, "other");
  REQUIRE_FALSE(twice);
  CHECK(fs::read_file(f).value() == "secret");
  // A symlink in its place is not followed.
  std::filesystem::create_symlink(dir / "elsewhere", dir / "link");
  CHECK_FALSE(tls::write_new_private_file(dir / "link", "x"));
  CHECK_FALSE(std::filesystem::exists(dir / "elsewhere"));
}
