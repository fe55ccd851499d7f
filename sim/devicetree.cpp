#include "sim/devicetree.hpp"

#include <cstdio>

#include "common/fs.hpp"
#include "common/process.hpp"

namespace fleet::sim {

std::string bootloader_node(const bootloader::Info& info, bool tryboot) {
  auto u32 = [](const char* name, std::uint64_t v) {
    char buf[96];
    std::snprintf(buf, sizeof buf, "\t\t\t%s = <0x%llx>;\n", name, static_cast<unsigned long long>(v & 0xffffffffu));
    return std::string(buf);
  };
  std::string n = "\t\tbootloader {\n";
  if (info.build_timestamp) n += u32("build-timestamp", static_cast<std::uint64_t>(*info.build_timestamp));
  if (info.capabilities) n += u32("capabilities", *info.capabilities);
  // The version is a git hash: [0-9a-f] only, so it needs no escaping in dts.
  if (!info.version.empty()) n += "\t\t\tversion = \"" + info.version + "\";\n";
  n += u32("tryboot", tryboot ? 1 : 0);
  n += u32("partition", info.partition.value_or(0));
  n += u32("boot-mode", info.boot_mode.value_or(1));  // 1: SD card, the first BOOT_ORDER entry
  n += "\t\t};\n";
  return n;
}

Result<std::string> add_to_chosen(std::string_view dts, std::string_view node) {
  // dtc prints the node as "\tchosen {" ... "\t};" on lines of their own; dts wants every
  // property before the first subnode, so the node goes last.
  constexpr std::string_view open = "\tchosen {\n";
  constexpr std::string_view close = "\n\t};\n";
  size_t at = dts.find(open);
  if (at == std::string_view::npos) return fail(Errc::parse, "the device tree has no /chosen node");
  size_t end = dts.find(close, at);
  if (end == std::string_view::npos) return fail(Errc::parse, "the device tree's /chosen node does not end");
  end += 1;  // after the newline of the last line inside /chosen
  return std::string(dts.substr(0, end)) + std::string(node) + std::string(dts.substr(end));
}

Result<void> make_board_dtb(QemuSpec spec, const bootloader::Info& info, bool tryboot, const std::filesystem::path& out) {
  const std::filesystem::path qemu_dtb = out.string() + ".qemu";
  const std::filesystem::path dts = out.string() + ".dts";
  spec.dtb.clear();
  spec.dumpdtb = qemu_dtb;
  // No device of the dump's is in the tree QEMU writes for virt (virtio is probed on PCI), and
  // the board's SSH port may be held by the board itself: dump without them.
  spec.ssh_port = 0;
  spec.disks.clear();     // a running board holds its images' locks
  spec.watchdog = false;
  FLEET_TRY(with_context(process::capture({qemu_argv(spec), {}, {}, std::chrono::seconds(60)}),
                         "QEMU's device tree (dumpdtb)"));
  std::string text = FLEET_TRY(with_context(
      process::capture({{"dtc", "-q", "-I", "dtb", "-O", "dts", qemu_dtb.string()}, {}, {}, std::chrono::seconds(30)}),
      "dtc (Debian package device-tree-compiler)"));
  std::string with_node = FLEET_TRY(add_to_chosen(text, bootloader_node(info, tryboot)));
  FLEET_TRY(fs::write_file_atomic(dts, with_node));
  FLEET_TRY(with_context(process::capture({{"dtc", "-q", "-I", "dts", "-O", "dtb", "-o", out.string(), dts.string()},
                                           {}, {}, std::chrono::seconds(30)}),
                         "dtc"));
  return {};
}

}  // namespace fleet::sim
