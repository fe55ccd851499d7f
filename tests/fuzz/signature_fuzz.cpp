// parse_signature (common/bundle): whatever a bundle's manifest.sig holds (base64 included),
// a Result and no crash; an error names the file; an accepted signature holds 64 bytes and
// survives signature_to_json.
#include "common/bundle.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/manifest.sig";
  auto s = bundle::parse_signature(fuzz::as_text(data, size), k_source);
  if (!s) {
    fuzz::names_source(s.error().message, k_source);
    return 0;
  }
  if (s->signature.size() != 64) fuzz::broken("an accepted Ed25519 signature is not 64 bytes", s->key_id);
  const std::string text = bundle::signature_to_json(*s);
  auto again = bundle::parse_signature(text, k_source);
  if (!again) fuzz::broken("signature_to_json wrote a signature parse_signature refuses", text);
  if (again->algorithm != s->algorithm || again->key_id != s->key_id || again->signature != s->signature) {
    fuzz::broken("a signature changed through signature_to_json", text);
  }
  return 0;
}
