#include "common/bundle.hpp"

#include <sys/stat.h>

#include <algorithm>
#include <cstdio>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/text.hpp"

namespace fleet::bundle {
namespace {
using nlohmann::json;
namespace stdfs = std::filesystem;

bool all_of(std::string_view s, bool (*ok)(char)) {
  for (char c : s)
    if (!ok(c)) return false;
  return true;
}
bool lower_hex(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f'); }
bool alnum(char c) { return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
bool release_char(char c) { return alnum(c) || c == '.' || c == '_' || c == '+' || c == '-'; }
bool profile_char(char c) { return alnum(c) || c == '.' || c == '_' || c == '-'; }
// Characters a name in a bundle may use: what kernels, dtbs, overlays and modules are named
// with, none of which FAT forbids ("*/:<>?\| are) or a shell treats specially.
bool path_char(char c) {
  return alnum(c) || c == '.' || c == '_' || c == '+' || c == ',' || c == '=' || c == '@' || c == '~' || c == '-';
}
std::string fold_case(std::string_view s) {
  std::string out(s);
  for (auto& c : out)
    if (c >= 'A' && c <= 'Z') c = static_cast<char>(c - 'A' + 'a');
  return out;
}
}  // namespace

bool is_build_key(std::string_view s) { return s.size() == 64 && all_of(s, lower_hex); }
bool is_sha256_hex(std::string_view s) { return is_build_key(s); }
bool is_kernel_release(std::string_view s) {
  return !s.empty() && s.size() <= 64 && s != "." && s != ".." && all_of(s, release_char);
}
bool is_profile_name(std::string_view s) {
  return !s.empty() && s.size() <= 64 && s != "." && s != ".." && all_of(s, profile_char);
}

std::string bundle_path_problem(std::string_view path) {
  if (path.empty()) return "is empty";
  if (path.size() > 1024) return "is longer than 1024 characters";
  if (path.front() == '/') return "is absolute";
  int depth = 0;
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string_view part = path.substr(pos, slash == std::string_view::npos ? std::string_view::npos : slash - pos);
    if (part.empty()) return "has an empty component";
    if (part == "." || part == "..") return "has a '" + std::string(part) + "' component";
    if (!all_of(part, path_char)) return "has a character outside [A-Za-z0-9._+,=@~-]";
    if (++depth > 32) return "is more than 32 folders deep";
    if (slash == std::string_view::npos) break;
    pos = slash + 1;
  }
  return "";
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
  // Compared as the 64-bit number written: get<int>() read 4294967297 as 1.
  if (v->get<std::int64_t>() != k_format) {
    return fail(Errc::unsupported, where + ": bundle format " + v->dump() + ", this program reads " +
                                       std::to_string(k_format));
  }
  m.format = k_format;
  for (auto [key, dest] : {std::pair{"profile", &m.profile}, std::pair{"kernel_release", &m.kernel_release},
                           std::pair{"build_key", &m.build_key}, std::pair{"image", &m.image}}) {
    v = FLEET_TRY(field(key));
    if (!v->is_string() || v->get<std::string>().empty()) {
      return fail(Errc::invalid_input, where + ": field '" + key + "' must be a non-empty string");
    }
    *dest = v->get<std::string>();
  }
  if (!is_profile_name(m.profile)) {
    return fail(Errc::invalid_input, where + ": field 'profile' " + text::quoted(m.profile) +
                                         " must be 1 to 64 letters, digits, '.', '_' or '-'");
  }
  if (!is_kernel_release(m.kernel_release)) {
    return fail(Errc::invalid_input, where + ": field 'kernel_release' " + text::quoted(m.kernel_release) +
                                         " is not a kernel release (1 to 64 letters, digits, '.', '_', '+', '-'; "
                                         "not '.' or '..')");
  }
  if (!is_build_key(m.build_key)) {
    return fail(Errc::invalid_input, where + ": field 'build_key' " + text::quoted(m.build_key) +
                                         " must be exactly 64 lowercase hex digits");
  }
  if (auto why = bundle_path_problem(m.image); !why.empty() || !m.image.starts_with("boot/")) {
    return fail(Errc::invalid_input, where + ": field 'image' " + text::quoted(m.image) + " " +
                                         (why.empty() ? "is not under boot/" : why));
  }
  if (j.contains("cmdline_extra")) {
    const json& c = j.at("cmdline_extra");
    if (!c.is_array()) return fail(Errc::invalid_input, where + ": field 'cmdline_extra' must be a list of strings");
    for (const auto& w : c) {
      if (!w.is_string()) return fail(Errc::invalid_input, where + ": field 'cmdline_extra' must be a list of strings");
      const auto word = w.get<std::string>();
      if (auto why = text::command_word_problem(word); !why.empty()) {
        return fail(Errc::invalid_input, where + ": field 'cmdline_extra': the word " + text::quoted(word) + " " + why);
      }
      m.cmdline_extra.push_back(word);
    }
  }
  v = FLEET_TRY(field("files"));
  if (!v->is_object()) return fail(Errc::invalid_input, where + ": field 'files' must be an object");
  std::map<std::string, std::string> folded;  // FAT is case-insensitive: BOOT/x and boot/X collide
  for (const auto& [path, e] : v->items()) {
    if (auto why = bundle_path_problem(path); !why.empty()) {
      return fail(Errc::invalid_input, where + ": field 'files': the path " + text::quoted(path) + " " + why);
    }
    if (path == k_manifest || path == k_signature || path == k_build_log) {
      return fail(Errc::invalid_input, where + ": field 'files' lists " + path + ", which a manifest never lists");
    }
    // Only boot/ lands on FAT; modules go to ext4, where xt_DSCP.ko and xt_dscp.ko (both in
    // bcm2712_defconfig) are two files.
    if (auto [it, fresh] = path.starts_with("boot/") ? folded.emplace(fold_case(path), path)
                                                     : std::pair{folded.end(), true};
        !fresh) {
      return fail(Errc::invalid_input, where + ": field 'files': " + text::quoted(path) + " and " + text::quoted(it->second) +
                                           " are the same file on a FAT boot partition (case-insensitive)");
    }
    if (!e.is_object() || !e.contains("sha256") || !e.contains("size") || !e.at("sha256").is_string() ||
        !e.at("size").is_number_unsigned()) {
      return fail(Errc::invalid_input, where + ": files['" + path + "'] needs sha256 (string) and size (integer)");
    }
    FileEntry fe{e.at("sha256").get<std::string>(), e.at("size").get<std::uint64_t>()};
    if (!is_sha256_hex(fe.sha256)) {
      return fail(Errc::invalid_input, where + ": files['" + path + "'].sha256 must be 64 lowercase hex digits");
    }
    if (fe.size > k_max_file_size) {
      return fail(Errc::invalid_input, where + ": files['" + path + "'].size " + std::to_string(fe.size) +
                                           " is larger than any bundle file can be (1 TiB)");
    }
    m.files[path] = fe;
  }
  const std::string modules_prefix = "modules/lib/modules/" + m.kernel_release + "/";
  for (const auto& [path, e] : m.files) {
    if (path.starts_with("modules/") && !path.starts_with(modules_prefix)) {
      return fail(Errc::invalid_input, where + ": field 'files': " + text::quoted(path) + " is not under " +
                                           modules_prefix + " (the kernel_release), so it would never be installed");
    }
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

Result<std::vector<TreeFile>> list_tree(const stdfs::path& dir) {
  std::vector<TreeFile> out;
  std::error_code ec;
  struct ::stat top {};
  if (::lstat(dir.c_str(), &top) != 0) return fail(Errc::not_found, dir.string() + ": no such bundle folder");
  if (!S_ISDIR(top.st_mode)) return fail(Errc::invalid_input, dir.string() + " is not a folder");
  // recursive_directory_iterator does not follow links to folders; each entry is lstat'ed.
  for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
       it.increment(ec)) {
    // lexically: relative() resolves symlinks, and would name a link by its target.
    const std::string rel = it->path().lexically_relative(dir).generic_string();
    struct ::stat st {};
    if (::lstat(it->path().c_str(), &st) != 0) return fail(Errc::io, "cannot stat bundle file " + rel);
    if (S_ISDIR(st.st_mode)) {
      if (it.depth() >= 32) return fail(Errc::invalid_input, "bundle folder " + rel + " is more than 32 folders deep");
      continue;
    }
    if (auto why = fs::irregular_file_reason(st); !why.empty()) {
      return fail(Errc::invalid_input, "bundle file " + rel + " " + why + ": a bundle holds regular files only");
    }
    out.push_back(TreeFile{rel, static_cast<std::uint64_t>(st.st_size)});
  }
  if (ec) return fail(Errc::io, "cannot list " + dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const TreeFile& a, const TreeFile& b) { return a.path < b.path; });
  return out;
}

Result<void> hash_tree(const stdfs::path& dir, Manifest& m) {
  m.files.clear();
  for (const auto& f : FLEET_TRY(list_tree(dir))) {
    if (f.path == k_manifest || f.path == k_build_log || f.path == k_signature) continue;
    // Read as opened (O_NOFOLLOW, fstat): a file swapped for a FIFO after the walk is refused.
    hash::Sha256 h;
    const auto size = FLEET_TRY(fs::read_regular_chunks(dir / f.path, [&](std::string_view chunk) { h.update(chunk); }));
    m.files[f.path] = FileEntry{h.hex(), size};
  }
  return {};
}

Result<Manifest> verify(const std::filesystem::path& dir, std::string* manifest_text) {
  auto manifest_path = dir / k_manifest;
  // The walk first: a FIFO or device anywhere is refused before any file is opened.
  const auto listed = FLEET_TRY(with_context(list_tree(dir), dir.string()));
  std::string text = FLEET_TRY(fs::read_regular_file(manifest_path));
  Manifest m = FLEET_TRY(parse_manifest(text, manifest_path.string()));
  // Names and sizes before any byte is hashed: a missing, unlisted or grown file (a sparse
  // 100 GB one, say) is refused at the cost of a stat.
  std::map<std::string, std::uint64_t> sizes;
  for (const auto& f : listed) {
    if (f.path == k_manifest || f.path == k_build_log || f.path == k_signature) continue;
    if (!m.files.contains(f.path)) {
      return fail(Errc::mismatch, dir.string() + ": file " + f.path + " is not listed in the manifest");
    }
    sizes[f.path] = f.size;
  }
  for (const auto& [path, want] : m.files) {
    auto it = sizes.find(path);
    if (it == sizes.end()) return fail(Errc::not_found, dir.string() + ": bundle file " + path + " is missing");
    if (it->second != want.size) {
      return fail(Errc::mismatch, dir.string() + ": bundle file " + path + " is " + std::to_string(it->second) +
                                      " bytes, the manifest says " + std::to_string(want.size));
    }
  }
  for (const auto& [path, want] : m.files) {
    // Streamed from the file as opened (O_NOFOLLOW, fstat): never held whole in memory.
    hash::Sha256 h;
    const auto size = FLEET_TRY(fs::read_regular_chunks(dir / path, [&](std::string_view chunk) { h.update(chunk); }));
    if (size != want.size || h.hex() != want.sha256) {
      return fail(Errc::mismatch, dir.string() + ": bundle file " + path + " does not match its sha256 in the manifest");
    }
  }
  if (manifest_text) *manifest_text = std::move(text);
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
  const std::string text = FLEET_TRY(fs::read_regular_file(dir / k_manifest));
  Signature s;
  s.key_id = FLEET_TRY(signing::private_key_id(private_pem, key_source));
  s.signature = FLEET_TRY(signing::sign(private_pem, key_source, text));
  FLEET_TRY(fs::write_file_atomic(dir / k_signature, signature_to_json(s)));
  return s.key_id;
}

Result<std::string> check_signature(const std::filesystem::path& dir, const std::vector<signing::PublicKey>& trusted,
                                    std::optional<std::string_view> manifest_text) {
  std::string ids;
  for (const auto& k : trusted) ids += (ids.empty() ? "" : ", ") + k.id;
  const auto sig_path = dir / k_signature;
  if (!std::filesystem::exists(sig_path)) {
    return fail(Errc::auth_refused, dir.string() + " is not signed (no " + k_signature +
                                        ") and only bundles signed by key " + ids +
                                        " are accepted; sign it with fleetctl bundle sign");
  }
  const std::string sig_text = FLEET_TRY(fs::read_regular_file(sig_path));
  const auto sig = FLEET_TRY(parse_signature(sig_text, sig_path.string()));
  for (const auto& k : trusted) {
    if (k.id != sig.key_id) continue;
    const std::string text =
        manifest_text ? std::string(*manifest_text) : FLEET_TRY(fs::read_regular_file(dir / k_manifest));
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
