#include "sim/board.hpp"

#include <fstream>
#include <nlohmann/json.hpp>
#include <thread>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/process.hpp"
#include "sim/devicetree.hpp"
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
            {"ssh_port", s.ssh_port}, {"kernel", s.kernel}, {"release", s.release},
            {"tryboot", s.tryboot}, {"fell_back", s.fell_back}, {"last_event", s.last_event},
            {"bootloader", s.bootloader}, {"qemu_pid", qemu_pid}};
  return fs::write_file_atomic(b.status(), j.dump(2) + "\n");
}

}  // namespace

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
  FLEET_TRY(run_quiet({"cp", "-a", o.rootfs.string(), b.root().string()}));
  stdfs::create_directories(b.boot(), ec);
  stdfs::copy_file(o.kernel_bundle / manifest.image, b.boot() / "kernel_2712.img", ec);
  if (ec) return fail(Errc::io, "cannot copy the stock kernel: " + ec.message());
  auto modules = o.kernel_bundle / "modules/lib/modules" / manifest.kernel_release;
  if (stdfs::exists(modules)) FLEET_TRY(run_quiet({"cp", "-a", modules.string(), (b.root() / "lib/modules").string()}));
  FLEET_TRY(fs::write_file_atomic(b.boot() / "config.txt",
                                  "# A virtual Raspberry Pi 5 board (fleet-sim)\n[all]\ndtparam=watchdog=on\n"));
  FLEET_TRY(fs::write_file_atomic(b.boot() / "cmdline.txt", std::string(k_board_cmdline) + "\n"));
  FLEET_TRY(fs::write_file_atomic(b.root() / "etc/hostname", o.name + "\n"));
  // Host keys of its own, as a freshly imaged board has.
  FLEET_TRY(run_quiet({"ssh-keygen", "-A", "-f", b.root().string()}));
  if (!o.authorized_key.empty()) {
    auto key = FLEET_TRY(fs::read_file(o.authorized_key));
    FLEET_TRY(fs::write_file_atomic(b.root() / "root/.ssh/authorized_keys", key));
    stdfs::permissions(b.root() / "root/.ssh/authorized_keys", stdfs::perms::owner_read | stdfs::perms::owner_write, ec);
  }
  if (!o.agent.empty()) {
    stdfs::copy_file(o.agent, b.root() / "usr/local/bin/fleet-agent", stdfs::copy_options::overwrite_existing, ec);
    if (ec) return fail(Errc::io, "cannot copy the agent " + o.agent.string() + ": " + ec.message());
    stdfs::permissions(b.root() / "usr/local/bin/fleet-agent", stdfs::perms(0755), ec);
  }
  json meta = {{"name", o.name},
               {"ssh_port", o.ssh_port},
               {"stock_release", manifest.kernel_release},
               {"machine", machine_json(o.machine)}};
  FLEET_TRY(fs::write_file_atomic(b.meta(), meta.dump(2) + "\n"));
  BoardStatus s;
  s.name = o.name;
  s.state = "off";
  s.ssh_port = o.ssh_port;
  s.last_event = "created with " + manifest.kernel_release;
  s.bootloader = bootloader::describe(o.machine.bootloader);
  return write_status(b, s, 0);
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
  s.kernel = j.value("kernel", "");
  s.release = j.value("release", "");
  s.tryboot = j.value("tryboot", false);
  s.fell_back = j.value("fell_back", false);
  s.last_event = j.value("last_event", "");
  s.bootloader = j.value("bootloader", "");
  return s;
}

Result<void> run_board(const RunOptions& o, const std::atomic<bool>& stop) {
  const BoardFiles& b = o.board;
  std::string meta_text = FLEET_TRY(fs::read_file(b.meta()));
  json meta = json::parse(meta_text, nullptr, false);
  if (meta.is_discarded()) return fail(Errc::parse, b.meta().string() + ": not JSON");
  BoardStatus st;
  st.name = meta.value("name", b.dir.filename().string());
  st.ssh_port = meta.value("ssh_port", 0);
  const Machine machine = FLEET_TRY(machine_of(meta, b.meta()));
  const std::string macaddr = board_macaddr(st.name);
  st.bootloader = bootloader::describe(machine.bootloader);
  if (auto prev = read_status(b)) st.boots = prev->boots;
  std::ofstream console(b.console_log(), std::ios::app);
  BootFileReader read = [&](const std::string& p) -> std::optional<std::string> {
    auto r = fs::read_file(b.boot() / p);
    if (!r) return std::nullopt;
    return *r;
  };

  bool flag = false;
  for (int n = 0; n < o.max_boots && !stop; ++n) {
    ++st.boots;
    auto choice = choose_boot(read, flag);
    st.tryboot = flag;
    flag = false;  // the firmware clears the one-shot flag as it reads it
    if (!choice) {
      st.state = "off";
      st.last_event = choice.error().message;
      console << "[fleet-sim] " << choice.error().message << "\n" << std::flush;
      FLEET_TRY(write_status(b, st, 0));
      return std::unexpected(choice.error());
    }
    st.state = "booting";
    st.kernel = choice->kernel;
    st.fell_back = choice->fell_back;
    st.release.clear();
    QemuSpec spec;
    spec.kernel = b.boot() / choice->kernel;
    // What the Pi 5 firmware hands the kernel: its device tree's bootargs and the
    // bootloader's own words (numa=fake=N ...) before cmdline.txt.
    spec.append = kernel_cmdline(choice->cmdline, bootloader::cmdline_words(machine.bootloader, machine.memory_mb, macaddr));
    spec.cpus = machine.cpus;
    spec.memory_mb = machine.memory_mb;
    spec.numa_nodes = machine.qemu_numa_nodes;
    spec.root_9p = b.root();
    spec.ssh_port = st.ssh_port;
    // The bootloader's node in the device tree, with this boot's tryboot flag.
    if (auto dtb = make_board_dtb(spec, machine.bootloader, st.tryboot, b.dir / "board.dtb"); !dtb) {
      st.state = "off";
      st.last_event = "firmware: " + dtb.error().message;
      console << "[fleet-sim] " << st.last_event << "\n" << std::flush;
      FLEET_TRY(write_status(b, st, 0));
      return std::unexpected(dtb.error());
    }
    spec.dtb = b.dir / "board.dtb";
    console << "[fleet-sim] boot " << st.boots << ": " << choice->config_file << " -> " << choice->kernel
            << (choice->fell_back ? " (os_prefix " + choice->os_prefix + " fell back)" : "") << ", cmdline: "
            << spec.append << "\n"
            << std::flush;
    FLEET_TRY(write_status(b, st, 0));

    bool alive = false, next_tryboot = false, power_down = false, watchdog_fired = false;
    int qemu_pid = 0;
    const auto started = std::chrono::steady_clock::now();
    process::Command cmd{qemu_argv(spec), {}, {}, std::nullopt, {}, {}};
    cmd.on_start = [&](int pid) {
      qemu_pid = pid;
      (void)write_status(b, st, pid);
    };
    cmd.keep_going = [&] {
      if (stop) return false;
      if (!alive && std::chrono::steady_clock::now() - started > o.watchdog) {
        watchdog_fired = true;
        return false;
      }
      return true;
    };
    auto outcome = process::run(cmd, [&](std::string_view line) {
      console << line << "\n" << std::flush;
      if (line.find(k_tryboot_line) != std::string_view::npos) next_tryboot = true;
      if (line.find(k_power_down_line) != std::string_view::npos) power_down = true;
      if (auto at = line.find(k_alive_line); at != std::string_view::npos) {
        alive = true;
        st.state = "up";
        std::string_view rest = line.substr(at + std::string_view(k_alive_line).size());
        while (!rest.empty() && (rest.front() == ' ')) rest.remove_prefix(1);
        while (!rest.empty() && (rest.back() == '\r' || rest.back() == ' ')) rest.remove_suffix(1);
        st.release = std::string(rest);
        (void)write_status(b, st, qemu_pid);
      }
      if (line.find(k_ready_line) != std::string_view::npos) {
        st.state = "ready";
        (void)write_status(b, st, qemu_pid);
      }
    });
    if (!outcome) return std::unexpected(outcome.error());
    if (stop) break;
    if (watchdog_fired) {
      st.last_event = "watchdog: no sign of life in " + std::to_string(o.watchdog.count()) + " s, power-cycled";
    } else if (power_down) {
      st.state = "off";
      st.last_event = "powered off";
      FLEET_TRY(write_status(b, st, 0));
      return {};
    } else {
      flag = next_tryboot;
      st.last_event = next_tryboot ? "reboot with the tryboot flag" : (alive ? "reboot" : "reset before init (panic?)");
    }
    console << "[fleet-sim] " << st.last_event << "\n" << std::flush;
  }
  st.state = "off";
  st.last_event = stop ? "stopped" : "boot limit reached";
  return write_status(b, st, 0);
}

}  // namespace fleet::sim
