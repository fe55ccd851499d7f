#include "common/bundle.hpp"

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/hash.hpp"

namespace fleet::bundle {
namespace {
using nlohmann::json;
}

Result<Manifest> parse_manifest(std::string_view json_text, std::string_view source) {
  const std::string where(source);
  json j = json::parse(json_text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return fail(Errc::parse, where + ": not a JSON object");
  auto field = [&](const char* key) -> Result<const json*> {
    if (!j.contains(key)) return fail(Errc::invalid_input, where + ": missing field '" + key + "'");
    return &j.at(key);
  };
  Manifest m;
  const json* v = FLEET_TRY(field("format"));
  if (!v->is_number_integer()) return fail(Errc::invalid_input, where + ": field 'format' must be an integer");
  m.format = v->get<int>();
  if (m.format != k_format) {
    return fail(Errc::unsupported, where + ": bundle format " + std::to_string(m.format) + ", this program reads " +
                                       std::to_string(k_format));
  }
  for (auto [key, dest] : {std::pair{"profile", &m.profile}, std::pair{"kernel_release", &m.kernel_release},
                           std::pair{"build_key", &m.build_key}, std::pair{"image", &m.image}}) {
    v = FLEET_TRY(field(key));
    if (!v->is_string() || v->get<std::string>().empty()) {
      return fail(Errc::invalid_input, where + ": field '" + key + "' must be a non-empty string");
    }
    *dest = v->get<std::string>();
  }
  if (j.contains("cmdline_extra")) {
    const json& c = j.at("cmdline_extra");
    if (!c.is_array()) return fail(Errc::invalid_input, where + ": field 'cmdline_extra' must be a list of strings");
    for (const auto& w : c) {
      if (!w.is_string()) return fail(Errc::invalid_input, where + ": field 'cmdline_extra' must be a list of strings");
      m.cmdline_extra.push_back(w.get<std::string>());
    }
  }
  v = FLEET_TRY(field("files"));
  if (!v->is_object()) return fail(Errc::invalid_input, where + ": field 'files' must be an object");
  for (const auto& [path, e] : v->items()) {
    if (path.empty() || path.front() == '/' || path.find("..") != std::string::npos) {
      return fail(Errc::invalid_input, where + ": files: unsafe path '" + path + "'");
    }
    if (!e.is_object() || !e.contains("sha256") || !e.contains("size") || !e.at("sha256").is_string() ||
        !e.at("size").is_number_unsigned()) {
      return fail(Errc::invalid_input, where + ": files['" + path + "'] needs sha256 (string) and size (integer)");
    }
    m.files[path] = FileEntry{e.at("sha256").get<std::string>(), e.at("size").get<std::uint64_t>()};
  }
  if (!m.files.contains(m.image)) {
    return fail(Errc::invalid_input, where + ": the image '" + m.image + "' is not among the files");
  }
  return m;
}

std::string manifest_to_json(const Manifest& m) {
  json j;
  j["format"] = m.format;
  j["profile"] = m.profile;
  j["kernel_release"] = m.kernel_release;
  j["build_key"] = m.build_key;
  j["image"] = m.image;
  j["cmdline_extra"] = m.cmdline_extra;
  j["files"] = json::object();
  for (const auto& [path, e] : m.files) j["files"][path] = {{"sha256", e.sha256}, {"size", e.size}};
  return j.dump(2) + "\n";
}

Result<void> hash_tree(const std::filesystem::path& dir, Manifest& m) {
  m.files.clear();
  std::error_code ec;
  for (auto it = std::filesystem::recursive_directory_iterator(dir, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    const auto& entry = *it;
    std::string rel = std::filesystem::relative(entry.path(), dir).generic_string();
    if (entry.is_symlink()) return fail(Errc::invalid_input, "bundle file " + rel + " is a symlink");
    if (!entry.is_regular_file()) continue;
    if (rel == k_manifest || rel == k_build_log || rel == k_signature) continue;
    std::string sha = FLEET_TRY(hash::sha256_file(entry.path()));
    m.files[rel] = FileEntry{sha, static_cast<std::uint64_t>(entry.file_size())};
  }
  if (ec) return fail(Errc::io, "cannot list " + dir.string() + ": " + ec.message());
  return {};
}

Result<Manifest> verify(const std::filesystem::path& dir) {
  auto manifest_path = dir / k_manifest;
  std::string text = FLEET_TRY(fs::read_file(manifest_path));
  Manifest m = FLEET_TRY(parse_manifest(text, manifest_path.string()));
  Manifest actual = m;
  FLEET_TRY(hash_tree(dir, actual));
  for (const auto& [path, want] : m.files) {
    auto it = actual.files.find(path);
    if (it == actual.files.end()) return fail(Errc::not_found, dir.string() + ": bundle file " + path + " is missing");
    if (it->second.size != want.size || it->second.sha256 != want.sha256) {
      return fail(Errc::mismatch, dir.string() + ": bundle file " + path + " does not match its sha256 in the manifest");
    }
  }
  for (const auto& [path, e] : actual.files) {
    if (!m.files.contains(path)) {
      return fail(Errc::mismatch, dir.string() + ": file " + path + " is not listed in the manifest");
    }
  }
  return m;
}

Result<Signature> parse_signature(std::string_view json_text, std::string_view source) {
  auto j = nlohmann::json::parse(json_text, nullptr, false);
  if (!j.is_object()) return fail(Errc::parse, std::string(source) + ": not a JSON object");
  auto field = [&](const char* name) -> Result<std::string> {
    if (!j.contains(name) || !j[name].is_string() || j[name].get<std::string>().empty()) {
      return fail(Errc::parse, std::string(source) + ": field '" + name + "' is missing or not a string");
    }
    return j[name].get<std::string>();
  };
  Signature s;
  s.algorithm = FLEET_TRY(field("algorithm"));
  if (s.algorithm != "ed25519") {
    return fail(Errc::unsupported, std::string(source) + ": algorithm '" + s.algorithm + "' (only ed25519 is known)");
  }
  s.key_id = FLEET_TRY(field("key_id"));
  const std::string b64 = FLEET_TRY(field("signature"));
  s.signature = FLEET_TRY(with_context(signing::base64_decode(b64), std::string(source) + ": field 'signature'"));
  if (s.signature.size() != 64) {
    return fail(Errc::parse, std::string(source) + ": field 'signature' holds " + std::to_string(s.signature.size()) +
                                 " bytes, an Ed25519 signature has 64");
  }
  return s;
}

std::string signature_to_json(const Signature& s) {
  nlohmann::json j = {{"algorithm", s.algorithm}, {"key_id", s.key_id},
                      {"signature", signing::base64_encode(s.signature)}};
  return j.dump(2) + "\n";
}

Result<std::string> sign(const std::filesystem::path& dir, std::string_view private_pem, std::string_view key_source) {
  FLEET_TRY(verify(dir));
  const std::string text = FLEET_TRY(fs::read_file(dir / k_manifest));
  Signature s;
  s.key_id = FLEET_TRY(signing::private_key_id(private_pem, key_source));
  s.signature = FLEET_TRY(signing::sign(private_pem, key_source, text));
  FLEET_TRY(fs::write_file_atomic(dir / k_signature, signature_to_json(s)));
  return s.key_id;
}

Result<std::string> check_signature(const std::filesystem::path& dir, const std::vector<signing::PublicKey>& trusted) {
  std::string ids;
  for (const auto& k : trusted) ids += (ids.empty() ? "" : ", ") + k.id;
  const auto sig_path = dir / k_signature;
  if (!std::filesystem::exists(sig_path)) {
    return fail(Errc::auth_refused, dir.string() + " is not signed (no " + k_signature +
                                        ") and only bundles signed by key " + ids +
                                        " are accepted; sign it with fleetctl bundle sign");
  }
  const std::string sig_text = FLEET_TRY(fs::read_file(sig_path));
  const auto sig = FLEET_TRY(parse_signature(sig_text, sig_path.string()));
  for (const auto& k : trusted) {
    if (k.id != sig.key_id) continue;
    const std::string text = FLEET_TRY(fs::read_file(dir / k_manifest));
    auto ok = signing::verify(k, text, sig.signature);
    if (!ok) {
      return fail(Errc::mismatch, dir.string() + ": the signature of " + k_manifest + " by key " + k.id +
                                      " does not verify: the manifest changed after signing, or the signature is "
                                      "damaged");
    }
    return k.id;
  }
  return fail(Errc::auth_refused, dir.string() + " is signed by key " + sig.key_id +
                                      ", which is not trusted here (trusted: " + ids + ")");
}

Result<std::vector<signing::PublicKey>> load_trusted_keys(const std::filesystem::path& dir) {
  std::vector<signing::PublicKey> keys;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return keys;
  std::vector<std::filesystem::path> files;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (e.path().extension() == ".pem") files.push_back(e.path());
  }
  if (ec) return fail(Errc::io, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(files.begin(), files.end());
  for (const auto& f : files) {
    keys.push_back(FLEET_TRY(signing::read_public(f)));
  }
  return keys;
}

}  // namespace fleet::bundle
