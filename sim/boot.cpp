#include "sim/boot.hpp"

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "sim/cpio.hpp"
#include "sim/devicetree.hpp"
#include "sim/firmware.hpp"
#include "sim/qemu.hpp"

namespace fleet::sim {
namespace {

constexpr const char* k_begin = "FLEET-VERIFY-BEGIN";
constexpr const char* k_end = "FLEET-VERIFY-END";
constexpr const char* k_exit = "FLEET-VERIFY-EXIT ";
constexpr const char* k_bench_begin = "FLEET-BENCH-BEGIN";
constexpr const char* k_bench_end = "FLEET-BENCH-END";

// /init of the one-shot board. devtmpfs is mounted by hand: DEVTMPFS_MOUNT does not apply
// to an initramfs. poweroff -f goes through PSCI SYSTEM_OFF and ends QEMU.
constexpr const char* k_init = R"(#!/bin/busybox sh
/bin/busybox mount -t proc proc /proc
/bin/busybox mount -t sysfs sysfs /sys
/bin/busybox mount -t devtmpfs devtmpfs /dev
echo FLEET-VERIFY-BEGIN
/fleet-agent verify --json --contract /contract.json
echo "FLEET-VERIFY-EXIT $?"
echo FLEET-VERIFY-END
)";
constexpr const char* k_poweroff = "/bin/busybox poweroff -f\n";

// The console's lines between two markers (the end marker may be missing: a board that
// died), each without its trailing CR and spaces.
std::vector<std::string_view> lines_between(const std::string& console, const char* begin_marker,
                                            const char* end_marker) {
  std::vector<std::string_view> lines;
  size_t begin = console.find(begin_marker);
  if (begin == std::string::npos) return lines;
  size_t end = console.find(end_marker, begin);
  std::string_view section(console.data() + begin, (end == std::string::npos ? console.size() : end) - begin);
  size_t pos = 0;
  while (pos < section.size()) {
    size_t nl = section.find('\n', pos);
    std::string_view line = section.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? section.size() : nl + 1;
    while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.remove_suffix(1);
    lines.push_back(line);
  }
  return lines;
}

// The JSON between two markers, from the first line that starts with '{' to the end marker
// (fleet-agent bench prints it over several lines), if any.
std::optional<std::string> json_between(const std::string& console, const char* begin_marker, const char* end_marker) {
  std::string json;
  for (auto line : lines_between(console, begin_marker, end_marker)) {
    if (json.empty() && !line.starts_with("{")) continue;
    json.append(line);
    json.push_back('\n');
  }
  if (json.empty()) return std::nullopt;
  return json;
}

}  // namespace

Result<std::string> verify_initramfs(const Userland& u, const std::string& contract_json,
                                     const std::vector<std::string>& bench_args) {
  std::string init = k_init;
  if (!bench_args.empty()) {
    // Words only from our own callers (fleet-sim's --bench); each is single-quoted for sh.
    init += std::string("echo ") + k_bench_begin + "\n/fleet-agent bench";
    for (const auto& w : bench_args) {
      if (w.find('\'') != std::string::npos) return fail(Errc::invalid_input, "a bench argument holds a quote: " + w);
      init += " '" + w + "'";
    }
    init += " --json\n" + std::string("echo ") + k_bench_end + "\n";
  }
  init += k_poweroff;
  std::string busybox =
      FLEET_TRY(with_context(fs::read_file(u.busybox), "busybox for the virtual board (scripts/arm64-userland.sh)"));
  std::string agent =
      FLEET_TRY(with_context(fs::read_file(u.agent), "aarch64 fleet-agent (cmake --build --preset aarch64-agent)"));
  std::vector<CpioEntry> entries = {
      {"bin", 0040755, ""},  {"proc", 0040755, ""},          {"sys", 0040755, ""},
      {"dev", 0040755, ""},  {"tmp", 0041777, ""},           {"bin/busybox", 0100755, busybox},
      {"bin/sh", 0120777, "busybox"},                        {"init", 0100755, init},
      {"fleet-agent", 0100755, agent},                       {"contract.json", 0100644, contract_json},
  };
  return cpio_newc(entries);
}

VerifyOutput parse_verify_console(const std::string& console) {
  VerifyOutput out;
  for (auto line : lines_between(console, k_begin, k_end)) {
    if (!out.json && line.starts_with("{")) out.json = std::string(line);
    if (line.starts_with(k_exit)) {
      try {
        out.exit_code = std::stoi(std::string(line.substr(std::string_view(k_exit).size())));
      } catch (const std::exception&) {
      }
    }
  }
  return out;
}

Result<BootResult> boot_and_verify(const BootOptions& o, const process::LineSink& on_line) {
  bundle::Manifest m = FLEET_TRY(bundle::verify(o.bundle));
  std::string contract = FLEET_TRY(fs::read_file(o.bundle / bundle::k_contract));
  std::string initramfs = FLEET_TRY(verify_initramfs(o.userland, contract, o.bench_args));
  auto dir = FLEET_TRY(fs::make_temp_dir("fleet-board"));
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{dir};
  FLEET_TRY(fs::write_file_atomic(dir / "initramfs.cpio", initramfs));

  BootResult r;
  r.kernel_release = m.kernel_release;
  std::vector<std::string> words = m.cmdline_extra;
  // panic=-1: a kernel that panics reboots at once, and -no-reboot turns that into an exit.
  words.push_back("panic=-1");
  words.insert(words.end(), o.extra_cmdline.begin(), o.extra_cmdline.end());
  std::string cmdline_txt;
  for (const auto& w : words) cmdline_txt += (cmdline_txt.empty() ? "" : " ") + w;
  const bootloader::Info loader = o.bootloader ? *o.bootloader : FLEET_TRY(bootloader_release(k_default_release));
  // As a Pi 5 boots: the device tree's bootargs and the bootloader's words (numa=fake=N) first.
  r.cmdline = kernel_cmdline(cmdline_txt, bootloader::cmdline_words(loader, o.memory_mb, board_macaddr("boot-verify")));

  QemuSpec spec;
  spec.kernel = o.bundle / m.image;
  spec.initrd = dir / "initramfs.cpio";
  spec.append = r.cmdline;
  spec.cpus = o.cpus;
  spec.memory_mb = o.memory_mb;
  spec.numa_nodes = o.numa_nodes;
  FLEET_TRY(make_board_dtb(spec, loader, false, dir / "board.dtb"));
  spec.dtb = dir / "board.dtb";
  auto started = std::chrono::steady_clock::now();
  auto outcome = FLEET_TRY(process::run({qemu_argv(spec), {}, {}, o.timeout}, [&](std::string_view line) {
    r.console.append(line);
    r.console.push_back('\n');
    if (on_line) on_line(line);
  }));
  r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - started).count();
  r.timed_out = outcome.timed_out;
  if (!outcome.timed_out && outcome.exit_code != 0) {
    return fail(Errc::process_failed, "qemu-system-aarch64 exited with status " + std::to_string(outcome.exit_code) +
                                          ":\n" + r.console.substr(r.console.size() > 2000 ? r.console.size() - 2000 : 0));
  }
  r.verify = parse_verify_console(r.console);
  r.verify.bench_json = json_between(r.console, k_bench_begin, k_bench_end);
  return r;
}

}  // namespace fleet::sim
