#include "sim/board.hpp"

#include <fstream>
#include <map>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "sim/devicetree.hpp"
#include "sim/disk_image.hpp"
#include "sim/firmware.hpp"
#include "sim/qemu.hpp"

namespace fleet::sim {
namespace stdfs = std::filesystem;
using nlohmann::json;

namespace {

Result<void> run_quiet(std::vector<std::string> argv) {
  FLEET_TRY(process::capture({std::move(argv), {}, {}, std::chrono::minutes(5)}));
  return {};
}

json machine_json(const Machine& m) {
  json b = json::object();
  if (m.bootloader.build_timestamp) b["build_timestamp"] = *m.bootloader.build_timestamp;
  if (!m.bootloader.version.empty()) b["version"] = m.bootloader.version;
  if (m.bootloader.capabilities) b["capabilities"] = *m.bootloader.capabilities;
  return {{"cpus", m.cpus}, {"memory_mb", m.memory_mb}, {"qemu_numa_nodes", m.qemu_numa_nodes}, {"bootloader", b}};
}

// board.json's machine; a board made before it had one gets the defaults.
Result<Machine> machine_of(const json& meta, const std::filesystem::path& file) {
  Machine m = default_machine();
  if (!meta.contains("machine")) return m;
  const json& j = meta["machine"];
  auto bad = [&](const std::string& what) { return fail(Errc::invalid_input, file.string() + ": machine." + what); };
  if (!j.is_object()) return fail(Errc::invalid_input, file.string() + ": machine must be an object");
  auto count = [&](const char* key, int lo, int hi, int& out) -> Result<void> {
    if (!j.contains(key)) return {};
    if (!j[key].is_number_integer() || j[key].get<long long>() < lo || j[key].get<long long>() > hi) {
      return bad(std::string(key) + " must be an integer from " + std::to_string(lo) + " to " + std::to_string(hi));
    }
    out = j[key].get<int>();
    return {};
  };
  FLEET_TRY(count("cpus", 1, 8, m.cpus));  // gic-version=2 holds at most 8 CPUs
  FLEET_TRY(count("memory_mb", 128, 16384, m.memory_mb));
  FLEET_TRY(count("qemu_numa_nodes", 1, 8, m.qemu_numa_nodes));
  if (j.contains("bootloader")) {
    const json& b = j["bootloader"];
    if (!b.is_object()) return bad("bootloader must be an object");
    m.bootloader = {};
    if (b.contains("build_timestamp")) {
      if (!b["build_timestamp"].is_number_unsigned()) return bad("bootloader.build_timestamp must be a Unix time");
      m.bootloader.build_timestamp = b["build_timestamp"].get<std::int64_t>();
    }
    if (b.contains("version")) {
      // A git hash: it goes into the board's device tree as a dts string.
      const bool hex = b["version"].is_string() && !b["version"].get<std::string>().empty() &&
                       b["version"].get<std::string>().size() <= 64 &&
                       b["version"].get<std::string>().find_first_not_of("0123456789abcdef") == std::string::npos;
      if (!hex) return bad("bootloader.version must be a git hash (lower-case hex, at most 64 digits)");
      m.bootloader.version = b["version"].get<std::string>();
    }
    if (b.contains("capabilities")) {
      if (!b["capabilities"].is_number_unsigned() || b["capabilities"].get<std::uint64_t>() > 0xffffffffu) {
        return bad("bootloader.capabilities must be a 32-bit number");
      }
      m.bootloader.capabilities = b["capabilities"].get<std::uint32_t>();
    }
  }
  return m;
}

Result<void> write_status(const BoardFiles& b, const BoardStatus& s, int qemu_pid) {
  json j = {{"name", s.name},       {"state", s.state},     {"boots", s.boots},
            {"ssh_port", s.ssh_port}, {"model_port", s.model_port}, {"kernel", s.kernel}, {"release", s.release},
            {"tryboot", s.tryboot}, {"fell_back", s.fell_back}, {"last_event", s.last_event},
            {"bootloader", s.bootloader}, {"last_end", s.last_end}, {"watchdog_resets", s.watchdog_resets},
            {"silent_resets", s.silent_resets}, {"bootfs", b.bootfs().string()}, {"rootfs", b.rootfs().string()},
            {"qemu_pid", qemu_pid}};
  return fs::write_file_atomic(b.status(), j.dump(2) + "\n");
}

}  // namespace

namespace {

struct BootEndRow {
  bool BootSignals::*signal;  // nullptr: the row always matches (the last one)
  BootEnd end;
  bool again;                 // the firmware runs again (a reset), or the board stays off
  const char* name;
};
// Why a boot ended, first match wins. Order matters: a stop or a kill ends QEMU whatever the
// console said; the watchdog device fires on a board that may well have printed a reboot line
// and then hung in the reboot; a power-down line is final; "reboot: Restarting system" precedes
// both kinds of reboot.
constexpr BootEndRow k_boot_ends[] = {
    {&BootSignals::stop_requested, BootEnd::stopped, false, "stopped"},
    {&BootSignals::killed, BootEnd::power_lost, false, "power-lost"},
    {&BootSignals::watchdog_fired, BootEnd::watchdog_reset, true, "watchdog-reset"},
    {&BootSignals::silent_timeout, BootEnd::silent, true, "silent"},
    {&BootSignals::power_down, BootEnd::powered_off, false, "powered-off"},
    {&BootSignals::tryboot, BootEnd::tryboot_reboot, true, "tryboot-reboot"},
    {&BootSignals::restart, BootEnd::reboot, true, "reboot"},
    {&BootSignals::alive, BootEnd::reboot, true, "reboot"},
    {nullptr, BootEnd::reset_early, true, "reset-early"},
};

const BootEndRow& row_of(BootEnd e) {
  for (const auto& r : k_boot_ends)
    if (r.end == e) return r;
  return k_boot_ends[std::size(k_boot_ends) - 1];
}

}  // namespace

BootEnd classify_boot_end(const BootSignals& s) {
  for (const auto& r : k_boot_ends)
    if (r.signal == nullptr || s.*(r.signal)) return r.end;
  return BootEnd::reset_early;
}

const char* boot_end_name(BootEnd e) { return row_of(e).name; }
bool boots_again(BootEnd e) { return row_of(e).again; }

Machine default_machine() {
  Machine m;
  m.bootloader = bootloader_release(k_default_release).value();  // a known release: cannot fail
  return m;
}

Result<void> create_board(const CreateOptions& o) {
  BoardFiles b{o.dir};
  if (stdfs::exists(b.dir)) return fail(Errc::invalid_input, "board folder " + b.dir.string() + " already exists");
  if (!stdfs::exists(o.rootfs / ".fleet-rootfs")) {
    return fail(Errc::not_found, "no board rootfs at " + o.rootfs.string() + " (sim/rootfs.sh builds it)");
  }
  auto manifest = FLEET_TRY(bundle::verify(o.kernel_bundle));
  std::error_code ec;
  stdfs::create_directories(b.dir, ec);
  if (ec) return fail(Errc::io, "cannot create " + b.dir.string() + ": " + ec.message());
  // A board that could not be made leaves nothing behind (the folder did not exist).
  struct Undo {
    stdfs::path dir;
    bool keep = false;
    ~Undo() {
      std::error_code e;
      if (!keep) stdfs::remove_all(dir, e);
    }
  } undo{b.dir};
  // The two partitions are assembled as folders, then become the images.
  const stdfs::path stage = b.dir / "staging";
  const stdfs::path root = stage / "root", boot = stage / "boot";
  stdfs::create_directories(stage, ec);
  if (ec) return fail(Errc::io, "cannot create " + stage.string() + ": " + ec.message());
  FLEET_TRY(run_quiet({"cp", "-a", o.rootfs.string(), root.string()}));
  stdfs::create_directories(boot, ec);
  stdfs::copy_file(o.kernel_bundle / manifest.image, boot / "kernel_2712.img", ec);
  if (ec) return fail(Errc::io, "cannot copy the stock kernel: " + ec.message());
  auto modules = o.kernel_bundle / "modules/lib/modules" / manifest.kernel_release;
  if (stdfs::exists(modules)) FLEET_TRY(run_quiet({"cp", "-a", modules.string(), (root / "lib/modules").string()}));
  FLEET_TRY(fs::write_file_atomic(boot / "config.txt", "# A virtual Raspberry Pi 5 board (fleet-sim)\n[all]\ndtparam=watchdog=on\n"));
  FLEET_TRY(fs::write_file_atomic(boot / "cmdline.txt", std::string(k_board_cmdline) + "\n"));
  FLEET_TRY(fs::write_file_atomic(root / "etc/hostname", o.name + "\n"));
  // An identity of its own (systemd's machine-id, 32 hex digits), as a first boot would make:
  // from the name, so a board made again is the same machine.
  FLEET_TRY(fs::write_file_atomic(root / "etc/machine-id", hash::sha256_hex("fleet-sim board " + o.name).substr(0, 32) + "\n"));
  // Host keys of its own, as a freshly imaged board has.
  FLEET_TRY(run_quiet({"ssh-keygen", "-A", "-f", root.string()}));
  if (!o.authorized_key.empty()) {
    auto key = FLEET_TRY(fs::read_file(o.authorized_key));
    FLEET_TRY(fs::write_file_atomic(root / "root/.ssh/authorized_keys", key));
    stdfs::permissions(root / "root/.ssh/authorized_keys", stdfs::perms::owner_read | stdfs::perms::owner_write, ec);
  }
  if (!o.agent.empty()) {
    stdfs::copy_file(o.agent, root / "usr/local/bin/fleet-agent", stdfs::copy_options::overwrite_existing, ec);
    if (ec) return fail(Errc::io, "cannot copy the agent " + o.agent.string() + ": " + ec.message());
    stdfs::permissions(root / "usr/local/bin/fleet-agent", stdfs::perms(0755), ec);
  }
  if (o.prepare_root) FLEET_TRY(with_context(o.prepare_root(root), "preparing the root file system"));
  FLEET_TRY(disk::make_fat(b.bootfs(), disk::k_bootfs_mib, disk::k_bootfs_label, boot));
  FLEET_TRY(disk::make_ext4(b.rootfs(), disk::k_rootfs_mib, disk::k_rootfs_label, root));
  // The staging copy holds the host keys and the agent's token: it must go.
  stdfs::remove_all(stage, ec);
  if (ec) return fail(Errc::io, "cannot remove " + stage.string() + ": " + ec.message());
  json meta = {{"name", o.name},
               {"ssh_port", o.ssh_port},
               {"model_port", o.model_port},
               {"stock_release", manifest.kernel_release},
               {"machine", machine_json(o.machine)}};
  FLEET_TRY(fs::write_file_atomic(b.meta(), meta.dump(2) + "\n"));
  BoardStatus s;
  s.name = o.name;
  s.state = "off";
  s.ssh_port = o.ssh_port;
  s.model_port = o.model_port;
  s.last_event = "created with " + manifest.kernel_release;
  s.bootloader = bootloader::describe(o.machine.bootloader);
  FLEET_TRY(write_status(b, s, 0));
  undo.keep = true;
  return {};
}

Result<BoardStatus> read_status(const BoardFiles& b) {
  std::string text = FLEET_TRY(fs::read_file(b.status()));
  json j = json::parse(text, nullptr, false);
  if (j.is_discarded()) return fail(Errc::parse, b.status().string() + ": not JSON");
  BoardStatus s;
  s.name = j.value("name", "");
  s.state = j.value("state", "");
  s.boots = j.value("boots", 0);
  s.ssh_port = j.value("ssh_port", 0);
  s.model_port = j.value("model_port", 0);
  s.kernel = j.value("kernel", "");
  s.release = j.value("release", "");
  s.tryboot = j.value("tryboot", false);
  s.fell_back = j.value("fell_back", false);
  s.last_event = j.value("last_event", "");
  s.bootloader = j.value("bootloader", "");
  s.last_end = j.value("last_end", "");
  s.watchdog_resets = j.value("watchdog_resets", 0);
  s.silent_resets = j.value("silent_resets", 0);
  s.qemu_pid = j.value("qemu_pid", 0);
  return s;
}

namespace {

// What one boot's end means for a person reading status.json.
std::string end_event(BootEnd end, const RunOptions& o, int signal) {
  switch (end) {
    case BootEnd::stopped: return "stopped";
    case BootEnd::power_lost: return "power lost (QEMU killed by signal " + std::to_string(signal) + "): the board is off";
    case BootEnd::watchdog_reset: return "watchdog: the board's i6300esb was not petted in time, reset";
    case BootEnd::silent:
      return "no sign of life in " + std::to_string(o.watchdog.count()) + " s (userland never came up), power-cycled";
    case BootEnd::powered_off: return "powered off";
    case BootEnd::tryboot_reboot: return "reboot with the tryboot flag";
    case BootEnd::reboot: return "reboot";
    case BootEnd::reset_early: return "reset before userland (panic?)";
  }
  return "?";
}

}  // namespace

Result<void> run_board(const RunOptions& o, const std::atomic<bool>& stop) {
  const BoardFiles& b = o.board;
  std::string meta_text = FLEET_TRY(fs::read_file(b.meta()));
  json meta = json::parse(meta_text, nullptr, false);
  if (meta.is_discarded()) return fail(Errc::parse, b.meta().string() + ": not JSON");
  BoardStatus st;
  st.name = meta.value("name", b.dir.filename().string());
  st.ssh_port = meta.value("ssh_port", 0);
  st.model_port = meta.value("model_port", 0);  // boards made before it have none
  const Machine machine = FLEET_TRY(machine_of(meta, b.meta()));
  const std::string macaddr = board_macaddr(st.name);
  st.bootloader = bootloader::describe(machine.bootloader);
  if (auto prev = read_status(b)) {
    st.boots = prev->boots;
    st.watchdog_resets = prev->watchdog_resets;
    st.silent_resets = prev->silent_resets;
  }
  if (!stdfs::exists(b.bootfs()) || !stdfs::exists(b.rootfs())) {
    return fail(Errc::not_found, b.dir.string() + " has no bootfs.img and rootfs.img: not a board made by this "
                                 "fleet-sim (make it again with 'fleet-sim board create')");
  }
  std::ofstream console(b.console_log(), std::ios::app);
  // The firmware reads the FAT partition itself; an unreadable image is a board that stays dark.
  std::string fat_problem;
  // What this boot read, by path: choose_boot reads the kernel to see that it is there, and
  // the same bytes are then loaded (one mcopy of tens of MB per boot, not two).
  std::map<std::string, std::optional<std::string>> read_this_boot;
  BootFileReader read = [&](const std::string& p) -> std::optional<std::string> {
    if (auto hit = read_this_boot.find(p); hit != read_this_boot.end()) return hit->second;
    auto r = disk::read_fat_file(b.bootfs(), p);
    if (!r) {
      fat_problem = r.error().message;
      return std::nullopt;
    }
    return read_this_boot[p] = *r;
  };
  auto stay_off = [&](const std::string& why) -> Result<void> {
    st.state = "off";
    st.last_event = why;
    console << "[fleet-sim] " << why << "\n" << std::flush;
    return write_status(b, st, 0);
  };

  bool flag = false;
  for (int n = 0; n < o.max_boots && !stop; ++n) {
    ++st.boots;
    fat_problem.clear();
    read_this_boot.clear();  // the board may have written the partition since
    auto choice = choose_boot(read, flag);
    st.tryboot = flag;
    flag = false;  // the firmware clears the one-shot flag as it reads it
    if (choice && !fat_problem.empty()) {
      // A read that failed is not a missing file: falling back to another kernel on it would
      // boot what the card does not say.
      std::string why = "firmware: cannot read the boot partition: " + fat_problem;
      FLEET_TRY(stay_off(why));
      return fail(Errc::io, why);
    }
    if (!choice) {
      std::string why = choice.error().message + (fat_problem.empty() ? "" : " (" + fat_problem + ")");
      FLEET_TRY(stay_off(why));
      return fail(choice.error().code, why);
    }
    // The kernel as the firmware loads it into memory: read out of the FAT image.
    auto kernel = read(choice->kernel);
    if (!kernel) {
      std::string why = "firmware: cannot read " + choice->kernel + " from bootfs: " + fat_problem;
      FLEET_TRY(stay_off(why));
      return fail(Errc::io, why);
    }
    FLEET_TRY(fs::write_file_atomic(b.loaded_kernel(), *kernel));
    st.state = "booting";
    st.kernel = choice->kernel;
    st.fell_back = choice->fell_back;
    st.release.clear();
    QemuSpec spec;
    spec.kernel = b.loaded_kernel();
    // What the Pi 5 firmware hands the kernel: its device tree's bootargs and the
    // bootloader's own words (numa=fake=N ...) before cmdline.txt.
    spec.append = kernel_cmdline(choice->cmdline, bootloader::cmdline_words(machine.bootloader, machine.memory_mb, macaddr));
    spec.cpus = machine.cpus;
    spec.memory_mb = machine.memory_mb;
    spec.numa_nodes = machine.qemu_numa_nodes;
    spec.disks = {b.bootfs(), b.rootfs()};  // /dev/vda, /dev/vdb: mmcblk0p1, mmcblk0p2 on a Pi
    spec.watchdog = true;
    spec.ssh_port = st.ssh_port;
    spec.model_port = st.model_port;
    // The bootloader's node in the device tree, with this boot's tryboot flag.
    if (auto dtb = make_board_dtb(spec, machine.bootloader, st.tryboot, b.dir / "board.dtb"); !dtb) {
      FLEET_TRY(stay_off("firmware: " + dtb.error().message));
      return std::unexpected(dtb.error());
    }
    spec.dtb = b.dir / "board.dtb";
    console << "[fleet-sim] boot " << st.boots << ": " << choice->config_file << " -> " << choice->kernel
            << (choice->fell_back ? " (os_prefix " + choice->os_prefix + " fell back)" : "") << ", cmdline: "
            << spec.append << "\n"
            << std::flush;
    FLEET_TRY(write_status(b, st, 0));

    BootSignals seen;
    int qemu_pid = 0;
    // status.json is how the rack and the tests see the board: a write that fails stops the
    // board with that error rather than leaving it looking stuck.
    std::optional<Error> status_error;
    auto keep_status = [&](int pid) {
      if (auto w = write_status(b, st, pid); !w && !status_error) status_error = w.error();
    };
    const auto started = std::chrono::steady_clock::now();
    process::Command cmd{qemu_argv(spec), {}, {}, std::nullopt, {}, {}};
    cmd.on_start = [&](int pid) {
      qemu_pid = pid;
      keep_status(pid);
    };
    cmd.keep_going = [&] {
      if (status_error) return false;
      if (stop) {
        seen.stop_requested = true;
        return false;
      }
      // The board's watchdog fired: the emulator resets the board, as the PMIC resets the SoC.
      if (seen.watchdog_fired) return false;
      if (!seen.alive && std::chrono::steady_clock::now() - started > o.watchdog) {
        seen.silent_timeout = true;
        return false;
      }
      return true;
    };
    auto outcome = process::run(cmd, [&](std::string_view line) {
      console << line << "\n" << std::flush;
      if (line.find(k_tryboot_line) != std::string_view::npos) seen.tryboot = true;
      if (line.find(k_restart_line) != std::string_view::npos) seen.restart = true;
      if (line.find(k_power_down_line) != std::string_view::npos) seen.power_down = true;
      if (line.find(k_watchdog_fired_line) != std::string_view::npos) seen.watchdog_fired = true;
      // The release from the kernel's own banner, printed before userland: the "up" line is
      // echoed by a unit while systemd writes to the same console, and can come out
      // interleaved with its messages (CI saw a board whose release was never recorded).
      constexpr std::string_view k_banner = "Linux version ";
      if (auto at = line.find(k_banner); at != std::string_view::npos && st.release.empty()) {
        std::string_view rest = line.substr(at + k_banner.size());
        st.release = std::string(rest.substr(0, rest.find_first_of(" \r")));
      }
      if (line.find(k_alive_line) != std::string_view::npos) {
        seen.alive = true;
        st.state = "up";
        keep_status(qemu_pid);
      }
      if (line.find(k_ready_line) != std::string_view::npos) {
        st.state = "ready";
        keep_status(qemu_pid);
      }
    });
    if (!outcome) return std::unexpected(outcome.error());
    if (status_error) return std::unexpected(status_error->wrap("board " + b.dir.filename().string() + ": status.json"));
    if (!outcome->stopped && outcome->signal == 0 && outcome->exit_code != 0) {
      // QEMU itself failed (an image another QEMU holds, a bad option): not a board event.
      std::string why = "qemu-system-aarch64 exited with status " + std::to_string(outcome->exit_code) +
                        " (its messages are in " + b.console_log().string() + ")";
      FLEET_TRY(stay_off(why));
      return fail(Errc::process_failed, why);
    }
    // Killed by a signal that keep_going did not ask for: someone pulled the plug.
    seen.killed = !outcome->stopped && outcome->signal != 0;
    const BootEnd end = classify_boot_end(seen);
    st.last_end = boot_end_name(end);
    if (end == BootEnd::watchdog_reset) ++st.watchdog_resets;
    if (end == BootEnd::silent) ++st.silent_resets;
    if (end == BootEnd::tryboot_reboot) flag = true;
    st.last_event = end_event(end, o, outcome->signal);
    console << "[fleet-sim] " << st.last_event << "\n" << std::flush;
    if (!boots_again(end)) {
      st.state = "off";
      return write_status(b, st, 0);
    }
    FLEET_TRY(write_status(b, st, 0));
  }
  st.state = "off";
  st.last_event = stop ? "stopped" : "boot limit reached";
  return write_status(b, st, 0);
}

}  // namespace fleet::sim
