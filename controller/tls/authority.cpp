#include "controller/tls/authority.hpp"

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <cstring>
#include <ctime>
#include <memory>
#include <vector>

#include "common/fs.hpp"
#include "controller/tls/secret.hpp"

namespace fleet::tls {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Bn = std::unique_ptr<BIGNUM, decltype(&BN_free)>;

// Validity. notBefore is the Unix epoch on purpose: a board's clock can be far behind when
// it first reports (a Pi 5 without an RTC battery, before NTP), and a certificate that is
// "not yet valid" would keep its reports out for no gain; what the agent checks is who
// signed the certificate and its name. notAfter bounds a stolen CA certificate's use.
constexpr long k_ca_days = 20 * 365;
// A server's certificate lives with its process (its key is never written down).
constexpr long k_server_days = 2 * 365;

std::string openssl_error() {
  unsigned long e = ERR_get_error();
  ERR_clear_error();
  if (e == 0) return "no detail";
  std::array<char, 256> buf{};
  ERR_error_string_n(e, buf.data(), buf.size());
  return buf.data();
}

Result<Pkey> make_p256() {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "EC", "P-256"), &EVP_PKEY_free);
  if (!k) return fail(Errc::unsupported, "cannot make an EC P-256 key: " + openssl_error());
  return k;
}

Result<std::string> key_pem(EVP_PKEY* k) {
  Bio b(BIO_new(BIO_s_mem()), &BIO_free);
  if (PEM_write_bio_PKCS8PrivateKey(b.get(), k, nullptr, nullptr, 0, nullptr, nullptr) != 1) {
    return fail(Errc::io, "cannot write a key as PEM: " + openssl_error());
  }
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<std::string> cert_pem(X509* x) {
  Bio b(BIO_new(BIO_s_mem()), &BIO_free);
  if (PEM_write_bio_X509(b.get(), x) != 1) return fail(Errc::io, "cannot write a certificate as PEM: " + openssl_error());
  char* data = nullptr;
  long n = BIO_get_mem_data(b.get(), &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<void> add_ext(X509* subject, X509* issuer, int nid, const char* value) {
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, issuer, subject, nullptr, nullptr, 0);
  X509_EXTENSION* ext = X509V3_EXT_conf_nid(nullptr, &ctx, nid, value);
  if (!ext) return fail(Errc::io, std::string("cannot make the certificate extension ") + value + ": " + openssl_error());
  const int ok = X509_add_ext(subject, ext, -1);
  X509_EXTENSION_free(ext);
  if (ok != 1) return fail(Errc::io, std::string("cannot add the extension ") + value + ": " + openssl_error());
  return {};
}

// A certificate with a random 127-bit serial, the given subject CN and validity, for `key`.
Result<X509Ptr> new_cert(EVP_PKEY* key, const std::string& cn, long days) {
  X509Ptr x(X509_new(), &X509_free);
  if (!x || X509_set_version(x.get(), X509_VERSION_3) != 1) return fail(Errc::io, "cannot make a certificate: " + openssl_error());
  Bn serial(BN_new(), &BN_free);
  if (!serial || BN_rand(serial.get(), 127, BN_RAND_TOP_ANY, BN_RAND_BOTTOM_ANY) != 1 ||
      !BN_to_ASN1_INTEGER(serial.get(), X509_get_serialNumber(x.get()))) {
    return fail(Errc::io, "cannot draw a certificate serial: " + openssl_error());
  }
  if (!ASN1_TIME_set(X509_getm_notBefore(x.get()), 0) ||
      !X509_time_adj_ex(X509_getm_notAfter(x.get()), static_cast<int>(days), 0, nullptr)) {
    return fail(Errc::io, "cannot set a certificate's validity: " + openssl_error());
  }
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(cn.c_str()), -1, -1,
                                 0) != 1 ||
      X509_set_pubkey(x.get(), key) != 1) {
    return fail(Errc::io, "cannot name a certificate: " + openssl_error());
  }
  return x;
}

Result<void> sign(X509* x, EVP_PKEY* key) {
  if (X509_sign(x, key, EVP_sha256()) <= 0) return fail(Errc::io, "cannot sign a certificate: " + openssl_error());
  return {};
}

// Makes a CA in a fresh folder beside `dir` and renames it into place.
Result<void> create_in(const std::filesystem::path& dir) {
  Pkey key = FLEET_TRY(make_p256());
  const std::string id = FLEET_TRY(random_token()).substr(0, 8);
  // The CN carries a random id: two controllers' CAs never share a name, and an operator
  // can tell from a board's ca.pem which controller it belongs to.
  auto x = FLEET_TRY(new_cert(key.get(), "fleetctl CA " + id, k_ca_days));
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(x.get())) != 1) {
    return fail(Errc::io, "cannot name the CA's issuer: " + openssl_error());
  }
  FLEET_TRY(add_ext(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  FLEET_TRY(add_ext(x.get(), x.get(), NID_key_usage, "critical,keyCertSign,cRLSign"));
  FLEET_TRY(add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash"));
  FLEET_TRY(sign(x.get(), key.get()));
  const std::string kpem = FLEET_TRY(key_pem(key.get()));
  const std::string cpem = FLEET_TRY(cert_pem(x.get()));

  const auto parent = dir.has_parent_path() ? dir.parent_path() : std::filesystem::path(".");
  std::error_code ec;
  std::filesystem::create_directories(parent, ec);
  std::string tmpl = (parent / ("." + dir.filename().string() + ".tmp-XXXXXX")).string();
  std::vector<char> name(tmpl.begin(), tmpl.end());
  name.push_back('\0');
  if (::mkdtemp(name.data()) == nullptr) {  // mode 0700
    return fail(Errc::io, "cannot create a folder in " + parent.string() + ": " + std::strerror(errno));
  }
  const std::filesystem::path tmp(name.data());
  auto written = write_new_private_file(tmp / "ca.key", kpem);
  if (written) written = fs::write_file_atomic(tmp / "ca.pem", cpem);
  if (written) written = fs::fsync_dir(tmp);
  if (!written) {
    std::filesystem::remove_all(tmp, ec);
    return std::unexpected(written.error().wrap("making the controller's CA"));
  }
  std::filesystem::permissions(tmp, std::filesystem::perms::owner_all, ec);
  if (::rename(tmp.c_str(), dir.c_str()) != 0) {
    const int e = errno;
    std::filesystem::remove_all(tmp, ec);
    // ENOTEMPTY/EEXIST: another fleetctl made it between our look and our rename; use theirs.
    if (e != ENOTEMPTY && e != EEXIST) {
      return fail(Errc::io, "cannot rename " + tmp.string() + " to " + dir.string() + ": " + std::strerror(e));
    }
    return {};
  }
  return fs::fsync_dir(parent);
}

}  // namespace

std::filesystem::path authority_dir(const std::filesystem::path& state_db) {
  return (state_db.has_parent_path() ? state_db.parent_path() : std::filesystem::path(".")) / "tls";
}

Result<Authority> Authority::open_or_create(const std::filesystem::path& dir) {
  Authority a;
  a.dir_ = dir;
  std::error_code ec;
  if (!std::filesystem::exists(dir, ec)) {
    FLEET_TRY(create_in(dir));
    a.created_now_ = true;
  }
  const auto key_file = dir / "ca.key";
  FLEET_TRY(with_context(check_private_file(key_file), "the controller's CA key"));
  a.key_pem_ = FLEET_TRY(fs::read_file(key_file));
  const std::string pem = FLEET_TRY(fs::read_file(a.certificate_file()));
  a.cert_ = FLEET_TRY(parse_ca_certificate(pem, a.certificate_file().string()));
  // The pair must belong together, or every board set up with ca.pem would refuse us.
  Bio kb(BIO_new_mem_buf(a.key_pem_.data(), static_cast<int>(a.key_pem_.size())), &BIO_free);
  Pkey key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  Bio cb(BIO_new_mem_buf(a.cert_.pem.data(), static_cast<int>(a.cert_.pem.size())), &BIO_free);
  X509Ptr cert(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!key || !cert || X509_check_private_key(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return fail(Errc::mismatch, key_file.string() + " is not the key of " + a.certificate_file().string() +
                                    ": restore the pair, or remove " + dir.string() +
                                    " to make a new CA (then every board must be set up again)");
  }
  return a;
}

Result<ServerIdentity> Authority::issue_server() const {
  Bio kb(BIO_new_mem_buf(key_pem_.data(), static_cast<int>(key_pem_.size())), &BIO_free);
  Pkey ca_key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  Bio cb(BIO_new_mem_buf(cert_.pem.data(), static_cast<int>(cert_.pem.size())), &BIO_free);
  X509Ptr ca(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!ca_key || !ca) return fail(Errc::parse, dir_.string() + ": cannot read the CA: " + openssl_error());

  Pkey key = FLEET_TRY(make_p256());
  auto x = FLEET_TRY(new_cert(key.get(), std::string(k_controller_name), k_server_days));
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(ca.get())) != 1) {
    return fail(Errc::io, "cannot name a certificate's issuer: " + openssl_error());
  }
  const std::string san = "DNS:" + std::string(k_controller_name) + ",DNS:localhost,IP:127.0.0.1,IP:::1";
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_key_usage, "critical,digitalSignature"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_ext_key_usage, "serverAuth"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_subject_alt_name, san.c_str()));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_subject_key_identifier, "hash"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_authority_key_identifier, "keyid:always"));
  FLEET_TRY(sign(x.get(), ca_key.get()));
  ServerIdentity id;
  id.key_pem = FLEET_TRY(key_pem(key.get()));
  id.cert_pem = FLEET_TRY(cert_pem(x.get()));
  return id;
}

Result<PushAuthority> PushAuthority::create(const std::string& push_id, int days) {
  if (days < 1 || days > 365) return fail(Errc::invalid_input, "a push CA lives 1 to 365 days, not " + std::to_string(days));
  Pkey key = FLEET_TRY(make_p256());
  auto x = FLEET_TRY(new_cert(key.get(), "fleetctl push " + push_id.substr(0, 40), days));
  if (X509_set_issuer_name(x.get(), X509_get_subject_name(x.get())) != 1) {
    return fail(Errc::io, "cannot name the push CA's issuer: " + openssl_error());
  }
  FLEET_TRY(add_ext(x.get(), x.get(), NID_basic_constraints, "critical,CA:TRUE,pathlen:0"));
  FLEET_TRY(add_ext(x.get(), x.get(), NID_key_usage, "critical,keyCertSign"));
  FLEET_TRY(add_ext(x.get(), x.get(), NID_subject_key_identifier, "hash"));
  FLEET_TRY(sign(x.get(), key.get()));
  PushAuthority a;
  a.days_ = days;
  a.key_pem_ = FLEET_TRY(key_pem(key.get()));
  a.cert_pem_ = FLEET_TRY(cert_pem(x.get()));
  return a;
}

Result<ServerIdentity> PushAuthority::issue_member(const std::string& member_name) const {
  const std::string member = member_name.substr(0, 64);
  Bio kb(BIO_new_mem_buf(key_pem_.data(), static_cast<int>(key_pem_.size())), &BIO_free);
  Pkey ca_key(PEM_read_bio_PrivateKey(kb.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  Bio cb(BIO_new_mem_buf(cert_pem_.data(), static_cast<int>(cert_pem_.size())), &BIO_free);
  X509Ptr ca(PEM_read_bio_X509(cb.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!ca_key || !ca) return fail(Errc::parse, "the push CA cannot be read back: " + openssl_error());
  Pkey key = FLEET_TRY(make_p256());
  auto x = FLEET_TRY(new_cert(key.get(), "*", days_));
  X509_NAME* name = X509_get_subject_name(x.get());
  if (X509_NAME_add_entry_by_txt(name, "O", MBSTRING_UTF8, reinterpret_cast<const unsigned char*>(member.c_str()), -1,
                                 0, 0) != 1 ||
      X509_set_issuer_name(x.get(), X509_get_subject_name(ca.get())) != 1) {
    return fail(Errc::io, "cannot name a push member's certificate: " + openssl_error());
  }
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_basic_constraints, "critical,CA:FALSE"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_key_usage, "critical,digitalSignature"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_ext_key_usage, "serverAuth,clientAuth"));
  FLEET_TRY(add_ext(x.get(), ca.get(), NID_authority_key_identifier, "keyid:always"));
  FLEET_TRY(sign(x.get(), ca_key.get()));
  ServerIdentity id;
  id.key_pem = FLEET_TRY(key_pem(key.get()));
  id.cert_pem = FLEET_TRY(cert_pem(x.get()));
  return id;
}

}  // namespace fleet::tls
