#include <unistd.h>

#include <system_error>

#include "common/fs.hpp"
#include "common/gzip.hpp"
#include "node-agent/verify/verify.hpp"

namespace fleet::agent {
namespace {

std::optional<std::string> read_optional(const std::filesystem::path& p) {
  auto r = fs::read_file(p);
  if (!r) return std::nullopt;
  return *r;
}

std::filesystem::path under(const std::filesystem::path& root, const char* abs) {
  return root / std::filesystem::path(abs).relative_path();
}

}  // namespace

Result<std::optional<bootloader::Info>> read_bootloader(const std::filesystem::path& root) {
  const auto dir = under(root, "/proc/device-tree/chosen/bootloader");
  std::error_code ec;
  if (!std::filesystem::is_directory(dir, ec)) return std::optional<bootloader::Info>();
  std::map<std::string, std::string> props;
  for (const auto& e : std::filesystem::directory_iterator(dir, ec)) {
    if (!e.is_regular_file(ec)) continue;
    // Device-tree properties are a few bytes; anything large is not the bootloader's node.
    if (e.file_size(ec) > 4096) continue;
    if (auto text = fs::read_file(e.path())) props[e.path().filename().string()] = *text;
  }
  if (ec) return fail(Errc::io, "cannot read " + dir.string() + ": " + ec.message());
  auto info = bootloader::parse_node(props);
  if (!info) return std::unexpected(info.error());
  return std::optional<bootloader::Info>(*info);
}

Observations observe(const std::filesystem::path& root, Source source) {
  Observations o;
  if (source == Source::live) o.page_size_sysconf = ::sysconf(_SC_PAGESIZE);
  o.smaps = read_optional(under(root, "/proc/self/smaps"));
  o.thp_enabled = read_optional(under(root, "/sys/kernel/mm/transparent_hugepage/enabled"));
  o.nodes_online = read_optional(under(root, "/sys/devices/system/node/online"));
  o.osrelease = read_optional(under(root, "/proc/sys/kernel/osrelease"));
  o.meminfo = read_optional(under(root, "/proc/meminfo"));
  o.cmdline = read_optional(under(root, "/proc/cmdline"));
  if (auto b = read_bootloader(root)) o.bootloader = *b;
  else o.bootloader_error = b.error().message;
  std::error_code ec;
  o.drm_present = std::filesystem::exists(under(root, "/sys/class/drm"), ec);
  o.asound_present = std::filesystem::exists(under(root, "/proc/asound"), ec);

  auto gz = fs::read_file(under(root, "/proc/config.gz"));
  if (!gz) {
    o.kernel_config_error = "cannot read /proc/config.gz (kernel needs CONFIG_IKCONFIG=y and CONFIG_IKCONFIG_PROC=y): " +
                            gz.error().message;
  } else {
    auto text = gzip::decompress(*gz);
    if (text) o.kernel_config = *text;
    else o.kernel_config_error = "/proc/config.gz: " + text.error().message;
  }
  return o;
}

}  // namespace fleet::agent
