#include "common/bootloader.hpp"

#include <algorithm>
#include <cctype>
#include <charconv>
#include <ctime>

#include "common/text.hpp"

namespace fleet::bootloader {
namespace {

Result<std::uint32_t> be32(const std::string& name, const std::string& bytes) {
  if (bytes.size() != 4) {
    return fail(Errc::parse, "chosen/bootloader/" + name + ": " + std::to_string(bytes.size()) +
                                 " bytes, a device-tree u32 has 4");
  }
  std::uint32_t v = 0;
  for (unsigned char c : bytes) v = (v << 8) | c;
  return v;
}

}  // namespace

Result<Info> parse_node(const std::map<std::string, std::string>& props) {
  Info info;
  auto u32 = [&](const char* name) -> Result<std::optional<std::uint32_t>> {
    auto it = props.find(name);
    if (it == props.end()) return std::optional<std::uint32_t>();
    return std::optional<std::uint32_t>(FLEET_TRY(be32(name, it->second)));
  };
  if (auto ts = FLEET_TRY(u32("build-timestamp"))) info.build_timestamp = *ts;
  info.capabilities = FLEET_TRY(u32("capabilities"));
  if (auto t = FLEET_TRY(u32("tryboot"))) info.tryboot = *t != 0;
  info.partition = FLEET_TRY(u32("partition"));
  info.boot_mode = FLEET_TRY(u32("boot-mode"));
  if (auto it = props.find("version"); it != props.end()) {
    std::string v = it->second;
    while (!v.empty() && v.back() == '\0') v.pop_back();
    // A git hash, 40 hex digits; anything else is shown quoted, never trusted as text.
    const bool plain = v.size() <= 64 && std::all_of(v.begin(), v.end(), [](unsigned char c) { return std::isalnum(c); });
    if (!plain) return fail(Errc::parse, "chosen/bootloader/version is not a version string: " + text::quoted(v));
    info.version = v;
  }
  return info;
}

std::string date_of(std::int64_t unix_time) {
  std::time_t t = static_cast<std::time_t>(unix_time);
  std::tm tm{};
  ::gmtime_r(&t, &tm);
  char buf[32];
  std::strftime(buf, sizeof buf, "%Y-%m-%d", &tm);
  return buf;
}

std::string describe(const Info& info) {
  std::string out = info.build_timestamp ? date_of(*info.build_timestamp) : "unknown date";
  if (!info.version.empty()) out += " (" + info.version.substr(0, 8) + ")";
  return out;
}

std::string tryboot_problem(const Info& info) {
  if (info.capabilities && (*info.capabilities & k_capability_tryboot) == 0) {
    return "the bootloader " + describe(info) + " says it cannot tryboot (capabilities " +
           std::to_string(*info.capabilities) + " lack bit 3)";
  }
  if (info.build_timestamp && *info.build_timestamp < k_tryboot.unix_time) {
    return "the bootloader " + describe(info) + " is older than " + k_tryboot.date + ", the oldest fleet-agent trusts with a tryboot (" +
           k_tryboot.what + "; " + k_tryboot.source + ")";
  }
  return "";
}

std::string numa_problem(const Info& info) {
  if (!info.build_timestamp) return "the bootloader does not give its date";
  if (*info.build_timestamp < k_numa.unix_time) {
    return "the bootloader " + describe(info) + " predates NUMA emulation (" + k_numa.date + ": " + k_numa.what + ")";
  }
  return "";
}

int fake_numa_nodes(int memory_mb) { return std::clamp(memory_mb / 512, 1, 8); }

std::vector<std::string> cmdline_words(const Info& info, int memory_mb, std::string_view macaddr) {
  std::vector<std::string> words;
  const std::int64_t ts = info.build_timestamp.value_or(0);
  if (ts >= k_numa.unix_time) {
    words.push_back("numa=fake=" + std::to_string(fake_numa_nodes(memory_mb)));
    if (ts >= k_heap_order.unix_time) words.push_back("system_heap.max_order=0");
    if (ts >= k_iommu_policy.unix_time) words.push_back("iommu_dma_numa_policy=interleave");
  }
  words.push_back("smsc95xx.macaddr=" + std::string(macaddr));
  // The VideoCore's memory window, the same on every Pi 5 seen.
  words.push_back("vc_mem.mem_base=0x3fc00000");
  words.push_back("vc_mem.mem_size=0x40000000");
  return words;
}

std::optional<int> fake_numa_of(std::string_view cmdline) {
  constexpr std::string_view key = "numa=fake=";
  std::optional<int> found;
  for (const auto& word : text::split_words(cmdline)) {
    if (!word.starts_with(key)) continue;
    std::string_view v = std::string_view(word).substr(key.size());
    int n = 0;
    auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), n);
    // numa=fake=N, or a size (numa=fake=512M): only a bare count names the nodes. The last
    // word wins, as the kernel's early_param parsing does.
    found = (ec == std::errc() && p == v.data() + v.size() && n >= 1) ? std::optional<int>(n) : std::nullopt;
  }
  return found;
}

}  // namespace fleet::bootloader
