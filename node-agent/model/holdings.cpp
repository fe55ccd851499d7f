#include "node-agent/model/holdings.hpp"

#include <sys/stat.h>
#include <sys/statvfs.h>

#include <algorithm>
#include <nlohmann/json.hpp>

#include "common/fs.hpp"
#include "common/hash.hpp"

namespace fleet::model {
namespace {

std::int64_t mtime_ns(const struct ::stat& st) {
  return static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000000000 + st.st_mtim.tv_nsec;
}

std::filesystem::path record_file(const std::filesystem::path& dir, const std::string& name) {
  return records_dir(dir) / (name + ".json");
}

// The record of NAME, if it parses and still fits the file.
std::optional<Held> valid_record(const std::filesystem::path& dir, const std::string& name) {
  struct ::stat st {};
  if (::stat((dir / name).c_str(), &st) != 0 || !S_ISREG(st.st_mode)) return std::nullopt;
  auto text = fs::read_file(record_file(dir, name));
  if (!text) return std::nullopt;
  auto j = nlohmann::json::parse(*text, nullptr, false);
  if (j.is_discarded() || !j.is_object()) return std::nullopt;
  try {
    Held h{j.at("name").get<std::string>(), j.at("size").get<std::int64_t>(), j.at("sha256").get<std::string>(),
           j.at("at_ms").get<std::int64_t>()};
    if (h.name != name || h.size != st.st_size || j.at("mtime_ns").get<std::int64_t>() != mtime_ns(st)) return std::nullopt;
    if (!check_sha256(h.sha256, "record")) return std::nullopt;
    return h;
  } catch (const nlohmann::json::exception&) {
    return std::nullopt;
  }
}

}  // namespace

std::filesystem::path records_dir(const std::filesystem::path& dir) { return dir / ".fleet-models"; }

std::filesystem::path partial_dir(const std::filesystem::path& dir, const std::string& sha256) {
  return records_dir(dir) / "partial" / sha256;
}

Result<void> check_name(const std::string& name, const std::string& what) {
  if (name.empty() || name == "." || name == ".." || name.front() == '.' || name.find('/') != std::string::npos ||
      name.find('\0') != std::string::npos || name.size() > 255) {
    return fail(Errc::invalid_input, what + ": '" + name + "' is not a model file name (no '/', not starting with '.')");
  }
  return {};
}

Result<void> check_sha256(const std::string& hex, const std::string& what) {
  if (hex.size() != 64 || !std::all_of(hex.begin(), hex.end(), [](char c) {
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f');
      })) {
    return fail(Errc::invalid_input, what + ": '" + hex + "' is not a sha256 (64 lowercase hex digits)");
  }
  return {};
}

Result<bool> holds(const std::filesystem::path& dir, const std::string& name, std::int64_t size,
                   const std::string& sha256) {
  FLEET_TRY(check_name(name, "model"));
  const auto file = dir / name;
  struct ::stat st {};
  if (::lstat(file.c_str(), &st) != 0) return false;
  if (!S_ISREG(st.st_mode) || st.st_size != size) return false;
  if (auto r = valid_record(dir, name)) return r->sha256 == sha256;
  // No record: hash it once, and remember the answer if it is the one asked for.
  auto got = FLEET_TRY(hash::sha256_file(file));
  if (got != sha256) return false;
  FLEET_TRY(record(dir, Held{name, size, sha256, static_cast<std::int64_t>(st.st_mtim.tv_sec) * 1000}));
  return true;
}

Result<void> record(const std::filesystem::path& dir, const Held& held) {
  struct ::stat st {};
  if (::stat((dir / held.name).c_str(), &st) != 0) {
    return fail(Errc::not_found, (dir / held.name).string() + ": cannot record a model that is not there");
  }
  nlohmann::json j{{"name", held.name},   {"size", held.size},        {"sha256", held.sha256},
                   {"at_ms", held.at_ms}, {"mtime_ns", mtime_ns(st)}};
  std::error_code ec;
  std::filesystem::create_directories(records_dir(dir), ec);
  if (ec) return fail(Errc::io, records_dir(dir).string() + ": " + ec.message());
  return fs::write_file_atomic(record_file(dir, held.name), j.dump() + "\n");
}

Result<std::vector<Held>> list(const std::filesystem::path& dir) {
  std::vector<Held> out;
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return out;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    const std::string name = e.path().filename().string();
    if (name.empty() || name.front() == '.') continue;
    if (auto r = valid_record(dir, name)) out.push_back(*r);
  }
  if (ec) return fail(Errc::io, dir.string() + ": " + ec.message());
  std::sort(out.begin(), out.end(), [](const Held& a, const Held& b) { return a.name < b.name; });
  return out;
}

Result<std::int64_t> free_bytes(const std::filesystem::path& dir) {
  std::filesystem::path p = std::filesystem::absolute(dir);
  std::error_code ec;
  while (!std::filesystem::exists(p, ec) && p.has_parent_path() && p != p.parent_path()) p = p.parent_path();
  struct ::statvfs v {};
  if (::statvfs(p.c_str(), &v) != 0) return fail(Errc::io, p.string() + ": cannot tell its free space");
  return static_cast<std::int64_t>(v.f_bavail) * static_cast<std::int64_t>(v.f_frsize);
}

std::int64_t partial_bytes(const std::filesystem::path& dir, const std::string& sha256, const std::string& name) {
  struct ::stat st {};
  if (::stat((partial_dir(dir, sha256) / name).c_str(), &st) != 0) return 0;
  return static_cast<std::int64_t>(st.st_blocks) * 512;
}

}  // namespace fleet::model
