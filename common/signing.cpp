#include "common/signing.hpp"

#include <openssl/bio.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/pem.h>

#include <array>
#include <memory>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/openssl_error.hpp"

namespace fleet::signing {

namespace {

using Pkey = std::unique_ptr<EVP_PKEY, decltype(&EVP_PKEY_free)>;
using Bio = std::unique_ptr<BIO, decltype(&BIO_free)>;
using MdCtx = std::unique_ptr<EVP_MD_CTX, decltype(&EVP_MD_CTX_free)>;


Bio bio_of(std::string_view text) {
  return Bio(BIO_new_mem_buf(text.data(), static_cast<int>(text.size())), &BIO_free);
}

std::string bio_text(BIO* b) {
  char* data = nullptr;
  long n = BIO_get_mem_data(b, &data);
  return std::string(data, static_cast<std::size_t>(n));
}

Result<void> require_ed25519(EVP_PKEY* k, std::string_view source) {
  if (EVP_PKEY_id(k) != EVP_PKEY_ED25519) {
    return fail(Errc::unsupported, std::string(source) + ": the key is " + OBJ_nid2sn(EVP_PKEY_id(k)) +
                                       ", fleetctl signs with Ed25519 (make one with fleetctl bundle keygen)");
  }
  return {};
}

Result<std::string> id_of(EVP_PKEY* k, std::string_view source) {
  std::array<unsigned char, 32> raw{};
  std::size_t n = raw.size();
  if (EVP_PKEY_get_raw_public_key(k, raw.data(), &n) != 1 || n != raw.size()) {
    return fail(Errc::parse, std::string(source) + ": cannot read the public key: " + openssl_error());
  }
  return hash::sha256_hex(std::string_view(reinterpret_cast<const char*>(raw.data()), n)).substr(0, 16);
}

Result<Pkey> read_private(std::string_view pem, std::string_view source) {
  auto bio = bio_of(pem);
  Pkey k(PEM_read_bio_PrivateKey(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!k) {
    return fail(Errc::parse, std::string(source) + ": not a PEM private key (an unencrypted PKCS#8 Ed25519 key): " +
                                 openssl_error());
  }
  FLEET_TRY(require_ed25519(k.get(), source));
  return k;
}

constexpr std::string_view k_b64 = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

}  // namespace

Result<KeyPair> generate() {
  Pkey k(EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519"), &EVP_PKEY_free);
  if (!k) return fail(Errc::unsupported, "cannot make an Ed25519 key: " + openssl_error());
  Bio priv(BIO_new(BIO_s_mem()), &BIO_free), pub(BIO_new(BIO_s_mem()), &BIO_free);
  if (PEM_write_bio_PKCS8PrivateKey(priv.get(), k.get(), nullptr, nullptr, 0, nullptr, nullptr) != 1 ||
      PEM_write_bio_PUBKEY(pub.get(), k.get()) != 1) {
    return fail(Errc::io, "cannot write the key as PEM: " + openssl_error());
  }
  return KeyPair{bio_text(priv.get()), bio_text(pub.get()), FLEET_TRY(id_of(k.get(), "the new key"))};
}

Result<PublicKey> parse_public(std::string_view pem, std::string_view source) {
  auto bio = bio_of(pem);
  Pkey k(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!k) {
    if (pem.find("PRIVATE KEY") != std::string_view::npos) {
      ERR_clear_error();
      return fail(Errc::invalid_input, std::string(source) +
                                           ": this is a private key; give the public one (KEY.pub from fleetctl bundle "
                                           "keygen, or openssl pkey -pubout)");
    }
    return fail(Errc::parse, std::string(source) + ": not a PEM public key: " + openssl_error());
  }
  FLEET_TRY(require_ed25519(k.get(), source));
  return PublicKey{FLEET_TRY(id_of(k.get(), source)), std::string(pem), std::string(source)};
}

Result<PublicKey> read_public(const std::filesystem::path& file) {
  const std::string pem = FLEET_TRY(fs::read_file(file));
  return parse_public(pem, file.string());
}

Result<std::string> private_key_id(std::string_view private_pem, std::string_view source) {
  auto k = FLEET_TRY(read_private(private_pem, source));
  return id_of(k.get(), source);
}

Result<std::string> sign(std::string_view private_pem, std::string_view source, std::string_view message) {
  auto k = FLEET_TRY(read_private(private_pem, source));
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  std::string sig(64, '\0');
  std::size_t n = sig.size();
  // Ed25519 hashes internally: no digest is named, and it signs in one shot.
  if (!ctx || EVP_DigestSignInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1 ||
      EVP_DigestSign(ctx.get(), reinterpret_cast<unsigned char*>(sig.data()), &n,
                     reinterpret_cast<const unsigned char*>(message.data()), message.size()) != 1) {
    return fail(Errc::io, std::string(source) + ": signing failed: " + openssl_error());
  }
  sig.resize(n);
  return sig;
}

Result<void> verify(const PublicKey& key, std::string_view message, std::string_view signature) {
  auto bio = bio_of(key.pem);
  Pkey k(PEM_read_bio_PUBKEY(bio.get(), nullptr, nullptr, nullptr), &EVP_PKEY_free);
  if (!k) return fail(Errc::parse, key.source + ": not a PEM public key: " + openssl_error());
  FLEET_TRY(require_ed25519(k.get(), key.source));
  MdCtx ctx(EVP_MD_CTX_new(), &EVP_MD_CTX_free);
  if (!ctx || EVP_DigestVerifyInit(ctx.get(), nullptr, nullptr, nullptr, k.get()) != 1) {
    return fail(Errc::io, key.source + ": cannot verify: " + openssl_error());
  }
  const int ok = EVP_DigestVerify(ctx.get(), reinterpret_cast<const unsigned char*>(signature.data()),
                                  signature.size(), reinterpret_cast<const unsigned char*>(message.data()),
                                  message.size());
  ERR_clear_error();
  if (ok != 1) return fail(Errc::mismatch, "the signature does not verify with key " + key.id);
  return {};
}

std::string base64_encode(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  for (std::size_t i = 0; i < bytes.size(); i += 3) {
    std::uint32_t v = std::uint32_t(std::uint8_t(bytes[i])) << 16;
    if (i + 1 < bytes.size()) v |= std::uint32_t(std::uint8_t(bytes[i + 1])) << 8;
    if (i + 2 < bytes.size()) v |= std::uint32_t(std::uint8_t(bytes[i + 2]));
    out.push_back(k_b64[(v >> 18) & 63]);
    out.push_back(k_b64[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? k_b64[(v >> 6) & 63] : '=');
    out.push_back(i + 2 < bytes.size() ? k_b64[v & 63] : '=');
  }
  return out;
}

Result<std::string> base64_decode(std::string_view text) {
  if (text.size() % 4 != 0) return fail(Errc::parse, "base64 of " + std::to_string(text.size()) + " characters (not a multiple of 4)");
  std::string out;
  for (std::size_t i = 0; i < text.size(); i += 4) {
    std::uint32_t v = 0;
    int pad = 0;
    for (std::size_t j = 0; j < 4; ++j) {
      const char c = text[i + j];
      if (c == '=' && i + 4 == text.size() && j >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      const auto at = k_b64.find(c);
      if (at == std::string_view::npos || pad > 0) {
        return fail(Errc::parse, "base64: unexpected character at offset " + std::to_string(i + j));
      }
      v = (v << 6) | std::uint32_t(at);
    }
    out.push_back(char((v >> 16) & 0xff));
    if (pad < 2) out.push_back(char((v >> 8) & 0xff));
    if (pad < 1) out.push_back(char(v & 0xff));
  }
  return out;
}

}  // namespace fleet::signing
