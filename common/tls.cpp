#include "common/tls.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <array>
#include <memory>

#include "common/hash.hpp"
#include "common/openssl_error.hpp"

namespace fleet::tls {
namespace {

using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using X509Ptr = std::unique_ptr<X509, decltype(&X509_free)>;
using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;


}  // namespace

Result<CaCertificate> parse_ca_certificate(std::string_view pem, std::string_view source) {
  const std::string where(source);
  Bio bio(BIO_new_mem_buf(pem.data(), static_cast<int>(pem.size())), &BIO_free);
  X509Ptr cert(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  if (!cert) {
    return fail(Errc::parse, where + ": not a PEM certificate (-----BEGIN CERTIFICATE-----): " + openssl_error());
  }
  // A second certificate would be trusted too by whoever loads the file: one only.
  X509Ptr second(PEM_read_bio_X509(bio.get(), nullptr, nullptr, nullptr), &X509_free);
  ERR_clear_error();  // the normal end of the file reads as an error
  if (second) return fail(Errc::invalid_input, where + ": holds more than one certificate; give the CA's alone");
  if (X509_check_ca(cert.get()) != 1 || (X509_get_extension_flags(cert.get()) & EXFLAG_CA) == 0) {
    return fail(Errc::invalid_input,
                where + ": not a CA certificate (no basicConstraints CA:TRUE): give the controller's CA, "
                        "tls/ca.pem in fleetctl's state folder, not a server certificate");
  }
  Pkey key(X509_get_pubkey(cert.get()), &EVP_PKEY_free);
  if (!key || X509_check_issued(cert.get(), cert.get()) != X509_V_OK || X509_verify(cert.get(), key.get()) != 1) {
    ERR_clear_error();
    return fail(Errc::invalid_input, where + ": not a self-signed CA certificate (a root is needed, not an intermediate)");
  }
  CaCertificate out;
  Bio mem(BIO_new(BIO_s_mem()), &BIO_free);
  if (PEM_write_bio_X509(mem.get(), cert.get()) != 1) return fail(Errc::io, where + ": " + openssl_error());
  char* data = nullptr;
  long n = BIO_get_mem_data(mem.get(), &data);
  out.pem.assign(data, static_cast<std::size_t>(n));
  std::array<char, 512> name{};
  X509_NAME_oneline(X509_get_subject_name(cert.get()), name.data(), static_cast<int>(name.size()));
  out.subject = name.data();
  if (out.subject.starts_with("/")) out.subject.erase(0, 1);
  unsigned char* der = nullptr;
  int len = i2d_X509(cert.get(), &der);
  if (len <= 0) return fail(Errc::io, where + ": " + openssl_error());
  out.fingerprint = hash::sha256_hex(std::string_view(reinterpret_cast<const char*>(der), static_cast<std::size_t>(len)));
  OPENSSL_free(der);
  return out;
}

}  // namespace fleet::tls
