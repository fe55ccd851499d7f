// parse_manifest (common/bundle): whatever a bundle's manifest.json holds, a Result and no
// crash; an error names the file; a manifest it accepts is written back by manifest_to_json
// to one that parses the same (fleetctl writes what the agent reads).
#include "common/bundle.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

namespace {

bool same(const bundle::Manifest& a, const bundle::Manifest& b) {
  if (a.format != b.format || a.profile != b.profile || a.kernel_release != b.kernel_release ||
      a.build_key != b.build_key || a.image != b.image || a.cmdline_extra != b.cmdline_extra ||
      a.files.size() != b.files.size()) {
    return false;
  }
  for (const auto& [path, e] : a.files) {
    auto it = b.files.find(path);
    if (it == b.files.end() || it->second.sha256 != e.sha256 || it->second.size != e.size) return false;
  }
  return true;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  constexpr std::string_view k_source = "fuzz/manifest.json";
  auto m = bundle::parse_manifest(fuzz::as_text(data, size), k_source);
  if (!m) {
    fuzz::names_source(m.error().message, k_source);
    return 0;
  }
  const std::string text = bundle::manifest_to_json(*m);
  auto again = bundle::parse_manifest(text, k_source);
  if (!again) fuzz::broken("manifest_to_json wrote a manifest parse_manifest refuses", text + again.error().message);
  if (!same(*m, *again)) fuzz::broken("a manifest changed through manifest_to_json", text);
  return 0;
}
