#pragma once
// Ed25519 signatures (OpenSSL) for bundle manifests: who built a bundle, proven on the board
// before anything is written to its boot partition. Keys are PEM files as OpenSSL writes
// them (`openssl genpkey -algorithm ed25519`, or `fleetctl bundle keygen`); a key is named
// by its id, the first 16 hex digits of the sha256 of its 32 raw public bytes.
// Mender signs its artifact manifests the same way (one signature over the list of every
// file's sha256); RAUC uses X.509 CMS.
#include <filesystem>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::signing {

struct KeyPair {
  std::string private_pem;  // PKCS#8
  std::string public_pem;   // SubjectPublicKeyInfo
  std::string id;
};

struct PublicKey {
  std::string id;
  std::string pem;
  std::string source;  // the file it came from, for messages
};

Result<KeyPair> generate();

// The key in a public (or private) PEM: refused, naming `source`, unless it is Ed25519.
Result<PublicKey> parse_public(std::string_view pem, std::string_view source);
// The same from a file; errors name it.
Result<PublicKey> read_public(const std::filesystem::path& file);

// The 64-byte signature of `message` with the private key in `private_pem`.
Result<std::string> sign(std::string_view private_pem, std::string_view source, std::string_view message);

// The id of the key a private PEM holds.
Result<std::string> private_key_id(std::string_view private_pem, std::string_view source);

// Ok if `signature` is `key`'s signature of `message`; Errc::mismatch otherwise.
Result<void> verify(const PublicKey& key, std::string_view message, std::string_view signature);

std::string base64_encode(std::string_view bytes);
Result<std::string> base64_decode(std::string_view text);

}  // namespace fleet::signing
