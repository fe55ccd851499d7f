#include "common/bundle.hpp"

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
    if (rel == k_manifest || rel == k_build_log) continue;
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

}  // namespace fleet::bundle
