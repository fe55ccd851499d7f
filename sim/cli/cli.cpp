#include "sim/cli/cli.hpp"

#include <unistd.h>

#include <algorithm>
#include <array>
#include <charconv>
#include <cstring>
#include <iostream>
#include <nlohmann/json.hpp>

#include <signal.h>
#include <sys/wait.h>

#include <fstream>
#include <thread>

#include "common/args.hpp"
#include "common/fs.hpp"
#include "common/text.hpp"
#include "sim/board.hpp"
#include "sim/boot.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.pb.h"
#include "sim/firmware.hpp"
#include "sim/qemu.hpp"
#include "sim/light.hpp"

#ifndef FLEET_SOURCE_DIR
#define FLEET_SOURCE_DIR "."
#endif

namespace fleet::sim::cli {
namespace {

const std::string k_usage =
    "usage: fleet-sim COMMAND [OPTIONS]\n"
    "\n"
    "Virtual Raspberry Pi 5 boards: QEMU aarch64 running the kernels fleetctl builds.\n"
    "\n"
    "commands:\n"
    "  boot-verify   boot a bundle's kernel once and run fleet-agent verify inside\n"
    "  board create  make a virtual Pi 5 board: its SD card (a FAT32 bootfs image, an ext4 rootfs\n"
    "                image), SSH host keys, the agent\n"
    "  board up      start a board in the background (the firmware emulator and QEMU)\n"
    "  board run     run a board in the foreground until it powers off\n"
    "  board down    stop a board\n"
    "  board status  show boards: state, boots, running kernel, SSH port, resets, disk images\n"
    "  board console print a board's serial console\n"
    "  rack up       create and start boards pi-1..pi-N and write an inventory for them\n"
    "  rack down     stop every board of a rack\n"
    "  rack status   show every board of a rack\n"
    "  light         run a rack of light boards (no QEMU: a folder and an sshd each) for\n"
    "                measuring fleetctl at 32 or 128 boards\n"
    "\n"
    "Run 'fleet-sim COMMAND --help' for a command's options.\n";

// The kernel's own account of memory at boot ("Memory: 1956352K/2097152K available (12288K
// kernel code, ...)"), "" if it did not print one.
std::string kernel_memory_line(const std::string& console) {
  size_t at = console.find("] Memory: ");
  if (at == std::string::npos) return "";
  at += 2;
  size_t end = console.find('\n', at);
  std::string line = console.substr(at, end == std::string::npos ? std::string::npos : end - at);
  while (!line.empty() && (line.back() == '\r' || line.back() == ' ')) line.pop_back();
  return line;
}

int boot_verify(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string src = FLEET_SOURCE_DIR;
  const std::array options = {
      args::Option{"bundle", args::Takes::value, "DIR", "kernel bundle from 'fleetctl kernel build' (required)"},
      args::Option{"agent", args::Takes::value, "FILE", "static aarch64 fleet-agent (default: build/aarch64/node-agent/fleet-agent)"},
      args::Option{"busybox", args::Takes::value, "FILE", "static arm64 busybox (default: build/arm64-root/bin/busybox)"},
      args::Option{"append", args::Takes::value, "WORDS", "more kernel command-line words, e.g. transparent_hugepage=never"},
      args::Option{"memory", args::Takes::value, "MB", "board memory (default 1024), split over QEMU's NUMA nodes"},
      args::Option{"cpus", args::Takes::value, "N", "CPUs, 1 to 8 (default 2; a Pi 5 has 4)"},
      args::Option{"qemu-numa-nodes", args::Takes::value, "N",
                   "NUMA nodes QEMU makes (default 2); 1 as on a Pi 5, where nodes come from numa=fake"},
      args::Option{"bootloader", args::Takes::value, "DATE",
                   std::string("the bootloader release, YYYY-MM-DD (default ") + k_default_release +
                       "); before 2024-12-07 it adds no numa=fake"},
      args::Option{"bench", args::Takes::value, "ARGS",
                   "then run 'fleet-agent bench ARGS --json' on the board (e.g. \"--model-shape 15m\"); its JSON is printed"},
      args::Option{"console", args::Takes::nothing, "", "echo the board's serial console"},
      args::Option{"json", args::Takes::nothing, "", "print one JSON object"},
      args::Option{"help", args::Takes::nothing, "", "show this help"},
  };
  auto a = args::parse(argv, options);
  if (!a) {
    err << "fleet-sim boot-verify: " << a.error().message << "\n";
    return 2;
  }
  if (a->flag("help")) {
    out << "usage: fleet-sim boot-verify --bundle DIR [--append WORDS] [--cpus N] [--memory MB]\n"
           "                           [--qemu-numa-nodes N] [--bootloader DATE] [--bench ARGS] [--console] [--json]\n\n"
           "Boots the bundle's kernel in qemu-system-aarch64 (-M virt,gic-version=2 -cpu cortex-a76,\n"
           "the Pi 5's GIC-400 and cores) as the Pi 5 firmware would: the Pi 5 device tree's bootargs\n"
           "and the bootloader's words (numa=fake=N for the memory size) before the bundle's command\n"
           "line, and the bootloader's node in the device tree. An initramfs runs 'fleet-agent verify'\n"
           "against the bundle's contract, then powers off. Exit status 0 when every property passes.\n\n"
           "options:\n"
        << args::help(options);
    return 0;
  }
  auto bundle = a->value("bundle");
  if (!bundle) {
    err << "fleet-sim boot-verify: --bundle DIR is required\n";
    return 2;
  }
  BootOptions o;
  o.bundle = *bundle;
  o.userland.agent = a->value("agent").value_or(src + "/build/aarch64/node-agent/fleet-agent");
  o.userland.busybox = a->value("busybox").value_or(src + "/build/arm64-root/bin/busybox");
  if (auto w = a->value("append")) o.extra_cmdline = text::split_words(*w);
  if (auto b = a->value("bench")) {
    o.bench_args = text::split_words(*b);
    if (o.bench_args.empty()) {
      err << "fleet-sim boot-verify: --bench needs fleet-agent bench's arguments, e.g. --bench \"--model-shape 15m\"\n";
      return 2;
    }
  }
  if (auto m = a->value("memory")) {
    try {
      o.memory_mb = std::stoi(*m);
    } catch (const std::exception&) {
      o.memory_mb = 0;
    }
    if (o.memory_mb < 128) {
      err << "fleet-sim boot-verify: --memory must be a number of MB, at least 128\n";
      return 2;
    }
  }
  auto count = [&](const char* name, int lo, int hi, int& into) {
    auto v = a->value(name);
    if (!v) return true;
    int n = 0;
    auto [p, ec] = std::from_chars(v->data(), v->data() + v->size(), n);
    if (ec != std::errc() || p != v->data() + v->size() || n < lo || n > hi) {
      err << "fleet-sim boot-verify: --" << name << " must be a number from " << lo << " to " << hi << ", not '" << *v
          << "'\n";
      return false;
    }
    into = n;
    return true;
  };
  // gic-version=2 addresses at most 8 CPUs.
  if (!count("cpus", 1, 8, o.cpus) || !count("qemu-numa-nodes", 1, 8, o.numa_nodes)) return 2;
  if (auto d = a->value("bootloader")) {
    auto info = bootloader_release(*d);
    if (!info) {
      err << "fleet-sim boot-verify: --bootloader: " << info.error().message << "\n";
      return 2;
    }
    o.bootloader = *info;
  }
  bool json = a->flag("json");
  bool echo = a->flag("console");
  std::ostream& progress = json ? err : out;
  if (!json) {
    progress << "booting " << o.bundle.string() << " on a virtual Pi 5 (QEMU virt, " << o.cpus << " Cortex-A76, "
             << o.memory_mb << " MB in " << o.numa_nodes << " QEMU NUMA node" << (o.numa_nodes == 1 ? "" : "s") << ")...\n";
  }
  auto r = boot_and_verify(o, [&](std::string_view line) {
    if (echo) progress << "  | " << line << "\n";
  });
  if (!r) {
    err << "fleet-sim boot-verify: " << r.error().message << "\n";
    return r.error().code == Errc::not_found || r.error().code == Errc::invalid_input ? 2 : 1;
  }
  nlohmann::json report = r->verify.json ? nlohmann::json::parse(*r->verify.json, nullptr, false) : nlohmann::json();
  nlohmann::json bench = r->verify.bench_json ? nlohmann::json::parse(*r->verify.bench_json, nullptr, false)
                                              : nlohmann::json();
  // Read through the codec the controller uses: a board whose verification does not parse is
  // not verified, and the table below says why.
  std::optional<fleet::v1::Verification> verification;
  std::string unreadable;
  if (r->verify.json) {
    auto v = wire::parse<fleet::v1::Verification>(*r->verify.json, "the board's fleet-agent verify --json");
    if (v) verification = std::move(*v);
    else unreadable = v.error().message;
  }
  bool verified = r->verify.exit_code == 0 && verification && verification->ok();
  if (json) {
    out << nlohmann::json{{"kernel_release", r->kernel_release}, {"cmdline", r->cmdline}, {"seconds", r->seconds},
                          {"timed_out", r->timed_out}, {"verify_exit", r->verify.exit_code ? *r->verify.exit_code : -1},
                          {"verified", verified}, {"report", report}, {"bench", bench},
                          {"kernel_memory", kernel_memory_line(r->console)}}
               .dump()
        << "\n";
    return verified ? 0 : 1;
  }
  if (!verification) {
    out << "the board did not report" << (r->timed_out ? " (timed out)" : "")
        << (unreadable.empty() ? "" : " (" + unreadable + ")") << "; last console lines:\n"
        << r->console.substr(r->console.size() > 1500 ? r->console.size() - 1500 : 0);
    return 1;
  }
  out << "kernel " << r->kernel_release << ", command line: " << r->cmdline << "\n";
  for (const auto& c : verification->checks()) {
    out << "  " << (!c.pass() ? "FAIL " : c.warning().empty() ? "pass " : "WARN ") << c.property() << ": expected "
        << c.expected() << ", actual " << c.actual();
    if (!c.pass()) out << " (" << c.detail() << ")";
    if (!c.warning().empty()) out << " (" << c.warning() << ")";
    out << "\n";
  }
  if (const auto& m = verification->memory(); m.error().empty() && m.mem_total_kb() > 0) {
    out << "  memory: MemTotal " << m.mem_total_kb() / 1024 << " MiB, MemAvailable " << m.mem_available_kb() / 1024
        << " MiB\n";
  }
  if (!o.bench_args.empty()) out << "  bench: " << (bench.is_object() ? bench.dump() : "(no result)") << "\n";
  out << (verified ? "VERIFIED" : "NOT VERIFIED") << " in " << static_cast<int>(r->seconds * 10 + 0.5) / 10.0
      << " s from power-on to power-off\n";
  return verified ? 0 : 1;
}


std::atomic<bool> g_stop{false};
void on_signal(int) { g_stop = true; }

int board_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string src = FLEET_SOURCE_DIR;
  if (argv.empty()) {
    err << k_usage;
    return 2;
  }
  const std::string sub = argv[0];
  const std::array options = {
      args::Option{"rack", args::Takes::value, "DIR", "the folder holding the boards (default build/rack)"},
      args::Option{"bundle", args::Takes::value, "DIR", "create: the board's first (stock) kernel bundle (required)"},
      args::Option{"agent", args::Takes::value, "FILE", "create: the aarch64 fleet-agent to install, or none (default: build/aarch64/...)"},
      args::Option{"rootfs", args::Takes::value, "DIR", "create: rootfs template (default build/board-root)"},
      args::Option{"key", args::Takes::value, "FILE", "create: public key allowed to log in as root (default RACK/id_ed25519.pub)"},
      args::Option{"ssh-port", args::Takes::value, "PORT", "create: loopback port forwarded to the board's SSH (required)"},
      args::Option{"model-port", args::Takes::value, "PORT",
                   "create: loopback port forwarded to the board's port 6881, fleet-model's during `fleetctl model push` "
                   "(default none)"},
      args::Option{"cpus", args::Takes::value, "N", "create: CPUs, 1 to 8 (default 2; a Pi 5 has 4)"},
      args::Option{"memory", args::Takes::value, "MB", "create: memory (default 1024)"},
      args::Option{"qemu-numa-nodes", args::Takes::value, "N",
                   "create: NUMA nodes QEMU makes (default 2, for Debian's 6.1); 1 as on a Pi 5 (numa=fake)"},
      args::Option{"bootloader", args::Takes::value, "DATE",
                   std::string("create: the EEPROM's release, YYYY-MM-DD (default ") + k_default_release + ")"},
      args::Option{"watchdog", args::Takes::value, "SECONDS", "run/up: power-cycle a board silent this long (default 120)"},
      args::Option{"wait", args::Takes::value, "SECONDS", "up: wait until the board is ready (sshd up)"},
      args::Option{"json", args::Takes::nothing, "", "status: JSON"},
      args::Option{"help", args::Takes::nothing, "", "show this help"},
  };
  auto a = args::parse(std::vector<std::string>(argv.begin() + 1, argv.end()), options);
  if (!a) {
    err << "fleet-sim board " << sub << ": " << a.error().message << "\n";
    return 2;
  }
  if (a->flag("help")) {
    out << "usage: fleet-sim board create|up|run|down|status|console NAME [options]\n\noptions:\n" << args::help(options);
    return 0;
  }
  const std::filesystem::path rack = a->value("rack").value_or("build/rack");
  std::vector<std::string> names = a->positional;
  if (sub == "status" && names.empty()) {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(rack, ec)) {
      if (std::filesystem::exists(e.path() / "board.json")) names.push_back(e.path().filename().string());
    }
    std::sort(names.begin(), names.end());
  }
  if (names.empty()) {
    err << "fleet-sim board " << sub << ": name a board\n";
    return 2;
  }
  // Numeric options; a bad one is reported by name below (bad_number).
  std::string bad_number;
  auto seconds = [&](const char* opt, int dflt) {
    auto v = a->value(opt);
    if (!v) return dflt;
    try {
      size_t used = 0;
      int n = std::stoi(*v, &used);
      if (used == v->size() && n >= 0) return n;
    } catch (const std::exception&) {
    }
    bad_number = opt;
    return dflt;
  };
  seconds("ssh-port", 0);
  if (seconds("model-port", 0) > 65535) bad_number = "model-port";
  seconds("watchdog", 0);
  seconds("wait", 0);
  Machine machine = default_machine();
  machine.cpus = seconds("cpus", machine.cpus);
  machine.memory_mb = seconds("memory", machine.memory_mb);
  machine.qemu_numa_nodes = seconds("qemu-numa-nodes", machine.qemu_numa_nodes);
  // gic-version=2 addresses at most 8 CPUs; fewer than 128 MB does not boot Debian.
  if (machine.cpus < 1 || machine.cpus > 8) bad_number = "cpus";
  if (machine.memory_mb < 128 || machine.memory_mb > 16384) bad_number = "memory";
  if (machine.qemu_numa_nodes < 1 || machine.qemu_numa_nodes > 8) bad_number = "qemu-numa-nodes";
  if (auto d = a->value("bootloader")) {
    auto info = bootloader_release(*d);
    if (!info) {
      err << "fleet-sim board " << sub << ": --bootloader: " << info.error().message << "\n";
      return 2;
    }
    machine.bootloader = *info;
  }
  if (!bad_number.empty()) {
    err << "fleet-sim board " << sub << ": --" << bad_number << " must be a whole number in range (see --help)\n";
    return 2;
  }
  if (a->value("model-port") && seconds("model-port", 0) == seconds("ssh-port", 0)) {
    err << "fleet-sim board " << sub << ": --model-port and --ssh-port are both " << seconds("ssh-port", 0)
        << ": QEMU cannot forward one port to two\n";
    return 2;
  }
  int status_code = 0;
  nlohmann::json all = nlohmann::json::array();
  for (const auto& name : names) {
    BoardFiles board{rack / name};
    if (sub == "create") {
      CreateOptions c;
      c.dir = board.dir;
      c.name = name;
      c.rootfs = a->value("rootfs").value_or(src + "/build/board-root");
      c.agent = a->value("agent").value_or(src + "/build/aarch64/node-agent/fleet-agent");
      if (c.agent == "none") c.agent.clear();  // a board as imaged: fleetctl pushes the agent
      c.kernel_bundle = a->value("bundle").value_or("");
      c.ssh_port = seconds("ssh-port", 0);
      c.model_port = seconds("model-port", 0);
      c.machine = machine;
      std::filesystem::path key = a->value("key").value_or((rack / "id_ed25519.pub").string());
      if (!a->value("key") && !std::filesystem::exists(key)) {
        std::filesystem::create_directories(rack);
        auto k = process::capture({{"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-sim", "-f",
                                    (rack / "id_ed25519").string()}, {}, {}, std::chrono::seconds(30)});
        if (!k) {
          err << "fleet-sim: " << k.error().message << "\n";
          return 1;
        }
      }
      c.authorized_key = key;
      if (c.kernel_bundle.empty() || c.ssh_port <= 0) {
        err << "fleet-sim board create: --bundle DIR and --ssh-port PORT are required\n";
        return 2;
      }
      auto r = create_board(c);
      if (!r) {
        err << "fleet-sim board create " << name << ": " << r.error().message << "\n";
        return 1;
      }
      out << "board " << name << " created in " << board.dir.string() << " (ssh -p " << c.ssh_port
          << " root@127.0.0.1)\n";
    } else if (sub == "run") {
      ::signal(SIGTERM, on_signal);
      ::signal(SIGINT, on_signal);
      // Without its pid file `rack down` could not stop this board: refused before it starts.
      if (auto w = fs::write_file_atomic(board.pid(), std::to_string(::getpid()) + "\n"); !w) {
        err << "fleet-sim board run " << name << ": " << w.error().message << "\n";
        return 1;
      }
      RunOptions o;
      o.board = board;
      o.watchdog = std::chrono::seconds(seconds("watchdog", 120));
      auto r = run_board(o, g_stop);
      std::filesystem::remove(board.pid());
      if (!r) {
        err << "fleet-sim board run " << name << ": " << r.error().message << "\n";
        return 1;
      }
    } else if (sub == "up") {
      if (auto pid = fs::read_file(board.pid()); pid && std::atoi(pid->c_str()) > 0 && ::kill(std::atoi(pid->c_str()), 0) == 0) {
        out << "board " << name << " is already running\n";
        continue;
      }
      // Anything still buffered would be written twice: once by us, once by the child.
      out.flush();
      std::fflush(nullptr);
      pid_t child = ::fork();
      if (child == 0) {
        ::setsid();
        std::freopen("/dev/null", "r", stdin);
        std::freopen((board.dir / "runner.log").c_str(), "a", stdout);
        std::freopen((board.dir / "runner.log").c_str(), "a", stderr);
        std::string watchdog = std::to_string(seconds("watchdog", 120));
        ::execl("/proc/self/exe", "fleet-sim", "board", "run", name.c_str(), "--rack", rack.c_str(), "--watchdog",
                watchdog.c_str(), nullptr);
        ::_exit(127);
      }
      out << "board " << name << " starting (console: " << board.console_log().string() << ")\n";
      if (auto w = a->value("wait")) {
        auto until = std::chrono::steady_clock::now() + std::chrono::seconds(seconds("wait", 0));
        bool ready = false;
        while (std::chrono::steady_clock::now() < until) {
          auto s = read_status(board);
          if (s && s->state == "ready") {
            ready = true;
            break;
          }
          std::this_thread::sleep_for(std::chrono::milliseconds(250));
        }
        if (!ready) {
          err << "fleet-sim board up " << name << ": not ready after " << *w << " s; see " << board.console_log().string() << "\n";
          status_code = 1;
        } else {
          out << "board " << name << " ready\n";
        }
      }
    } else if (sub == "down") {
      auto pid = fs::read_file(board.pid());
      if (!pid) {
        out << "board " << name << " is not running\n";
        continue;
      }
      int p = std::atoi(pid->c_str());
      if (p <= 0) {
        std::filesystem::remove(board.pid());
        out << "board " << name << " is not running\n";
        continue;
      }
      ::kill(p, SIGTERM);
      for (int i = 0; i < 100 && ::kill(p, 0) == 0; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(100));
      if (::kill(p, 0) == 0) ::kill(p, SIGKILL);
      std::filesystem::remove(board.pid());
      out << "board " << name << " stopped\n";
    } else if (sub == "status") {
      auto s = read_status(board);
      if (!s) {
        err << "fleet-sim board status " << name << ": " << s.error().message << "\n";
        status_code = 1;
        continue;
      }
      if (a->flag("json")) {
        all.push_back({{"name", s->name}, {"state", s->state}, {"boots", s->boots}, {"ssh_port", s->ssh_port},
                       {"model_port", s->model_port}, {"kernel", s->kernel}, {"release", s->release}, {"tryboot", s->tryboot},
                       {"last_event", s->last_event}, {"last_end", s->last_end}, {"bootloader", s->bootloader},
                       {"watchdog_resets", s->watchdog_resets}, {"silent_resets", s->silent_resets},
                       {"bootfs", board.bootfs().string()}, {"rootfs", board.rootfs().string()}});
      } else {
        out << s->name << "\t" << s->state << "\tboots " << s->boots << "\tssh 127.0.0.1:" << s->ssh_port
            << (s->model_port > 0 ? "\tmodel 127.0.0.1:" + std::to_string(s->model_port) : std::string()) << "\t"
            << (s->release.empty() ? "-" : s->release) << (s->tryboot ? " (tryboot)" : "") << "\tbootloader "
            << (s->bootloader.empty() ? "-" : s->bootloader) << "\tresets: " << s->watchdog_resets << " by its watchdog, "
            << s->silent_resets << " silent\t" << s->last_event << "\n"
            << "\tbootfs " << board.bootfs().string() << "\n\trootfs " << board.rootfs().string() << "\n";
      }
    } else if (sub == "console") {
      auto text = fs::read_file(board.console_log());
      out << text.value_or("(no console output yet)\n");
      err << "-- " << name << "'s disks: bootfs " << board.bootfs().string() << " (FAT32, mtools: mdir -i IMAGE ::),"
          << " rootfs " << board.rootfs().string() << " (ext4, debugfs)\n";
    } else {
      err << "fleet-sim: unknown command 'board " << sub << "'\n";
      return 2;
    }
  }
  if (sub == "status" && a->flag("json")) out << all.dump() << "\n";
  return status_code;
}

// The inventory a rack answers to: every board on loopback with its forwarded SSH port, and
// where the other boards reach its fleet-model (10.0.2.2, the host's loopback seen from a
// board, and its forwarded model port): `fleetctl model push --advertise 10.0.2.2`.
std::string rack_inventory(const std::filesystem::path& rack, const std::vector<BoardStatus>& boards,
                           const std::string& bench) {
  std::string inv =
      "# The virtual rack " + rack.string() + " (written by fleet-sim rack up)\n"
      "all:\n"
      "  vars:\n"
      "    address: 127.0.0.1\n"
      "    user: root\n"
      "    key: " + (std::filesystem::absolute(rack) / "id_ed25519").string() + "\n"
      "    # QEMU emulates the boards' NEON dot product in software: the smallest probe shape.\n"
      "    fleet_bench: " + bench + "\n"
      "    fleet_model_listen: \"0.0.0.0:" + std::to_string(k_board_model_port) + "\"\n"
      "  hosts:\n";
  for (const auto& b : boards) {
    inv += "    " + b.name + ": {port: " + std::to_string(b.ssh_port);
    if (b.model_port > 0) inv += ", fleet_model_address: \"10.0.2.2:" + std::to_string(b.model_port) + "\"";
    inv += "}\n";
  }
  return inv;
}

int rack_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string src = FLEET_SOURCE_DIR;
  const std::array options = {
      args::Option{"n", args::Takes::value, "N", "up: boards pi-1 .. pi-N (default 3)"},
      args::Option{"rack", args::Takes::value, "DIR", "the folder holding the boards (default build/rack)"},
      args::Option{"bundle", args::Takes::value, "DIR",
                   "up: the stock kernel bundle new boards start on (default build/bundles/qemu-virt-stock)"},
      args::Option{"base-port", args::Takes::value, "PORT", "up: board pi-i gets SSH on 127.0.0.1:PORT+i (default 22700)"},
      args::Option{"model-base-port", args::Takes::value, "PORT",
                   "up: new board pi-i gets fleet-model's port (6881) on 127.0.0.1:PORT+i (default base port + 100)"},
      args::Option{"agent", args::Takes::value, "FILE", "up: aarch64 fleet-agent preinstalled on new boards, or none (default none: fleetctl pushes it)"},
      args::Option{"cpus", args::Takes::value, "N", "up: each new board's CPUs, 1 to 8 (default 2)"},
      args::Option{"memory", args::Takes::value, "MB", "up: each new board's memory (default 1024)"},
      args::Option{"bench", args::Takes::value, "SHAPE", "up: fleet_bench in the inventory (default 15m)"},
      args::Option{"wait", args::Takes::value, "SECONDS", "up: wait this long for every board to be ready (default 300)"},
      args::Option{"json", args::Takes::nothing, "", "status: JSON"},
      args::Option{"help", args::Takes::nothing, "", "show this help"},
  };
  // "rack --help" has no subcommand before the options.
  const bool has_sub = !argv.empty() && !argv[0].starts_with("-");
  const std::string sub = has_sub ? argv[0] : "";
  int code = 0;
  auto a = args::parse_command(std::vector<std::string>(argv.begin() + (has_sub ? 1 : 0), argv.end()), options,
                               {"fleet-sim", "fleet-sim rack up|down|status [-n N] [--rack DIR] [options]",
                                "A virtual rack of Pi 5 boards on this machine. 'up' creates the boards that do not\n"
                                "exist yet (pi-1 .. pi-N, each with its own root file system and boot partition,\n"
                                "started on a stock kernel), starts them, waits until each answers on SSH and writes\n"
                                "RACK/inventory.yml for fleetctl. 'down' stops every board; their disks stay."},
                               out, err, code);
  if (!a) return code;
  if (sub != "up" && sub != "down" && sub != "status") {
    err << "fleet-sim rack: say up, down or status\n";
    return 2;
  }
  const std::filesystem::path rack = a->value("rack").value_or("build/rack");
  auto number = [&](const char* opt, int dflt, int min, int max) -> std::optional<int> {
    auto v = args::int_value(*a, opt, min, max);
    if (!v) {
      err << "fleet-sim rack " << sub << ": " << v.error().message << "\n";
      return std::nullopt;
    }
    return v->value_or(dflt);
  };
  auto n = number("n", 3, 1, 64);
  auto base = number("base-port", 22700, 1024, 65000);
  auto wait = number("wait", 300, 0, 3600);
  if (!n || !base || !wait) return 2;
  auto model_base = number("model-base-port", *base + 100, 1024, 65000);
  if (!model_base) return 2;
  // SSH takes BASE+1 .. BASE+N and fleet-model MODEL_BASE+1 .. MODEL_BASE+N: one port each.
  if (*model_base + *n > *base && *base + *n > *model_base) {
    err << "fleet-sim rack " << sub << ": --model-base-port " << *model_base << " and --base-port " << *base
        << " overlap for " << *n << " boards (ports " << *model_base + 1 << ".." << *model_base + *n << " and "
        << *base + 1 << ".." << *base + *n << ")\n";
    return 2;
  }
  std::vector<std::string> all;  // every board in the rack folder
  {
    std::error_code ec;
    for (const auto& e : std::filesystem::directory_iterator(rack, ec)) {
      if (std::filesystem::exists(e.path() / "board.json")) all.push_back(e.path().filename().string());
    }
    std::sort(all.begin(), all.end());
  }
  const std::vector<std::string> with_rack = {"--rack", rack.string()};
  auto board = [&](std::vector<std::string> args) {
    args.insert(args.end(), with_rack.begin(), with_rack.end());
    return board_cmd(args, out, err);
  };
  if (sub == "status") {
    if (all.empty()) {
      err << "fleet-sim rack status: no boards in " << rack.string() << " (fleet-sim rack up -n N)\n";
      return 1;
    }
    std::vector<std::string> args = {"status"};
    if (a->flag("json")) args.push_back("--json");
    return board(args);
  }
  if (sub == "down") {
    if (all.empty()) {
      out << "no boards in " << rack.string() << "\n";
      return 0;
    }
    std::vector<std::string> args = {"down"};
    args.insert(args.end(), all.begin(), all.end());
    return board(args);
  }
  // up
  const std::string bundle = a->value("bundle").value_or(src + "/build/bundles/qemu-virt-stock");
  std::vector<std::string> names;
  for (int i = 1; i <= *n; ++i) names.push_back("pi-" + std::to_string(i));
  for (std::size_t i = 0; i < names.size(); ++i) {
    if (std::filesystem::exists(rack / names[i] / "board.json")) continue;
    if (!std::filesystem::exists(std::filesystem::path(bundle) / "manifest.json")) {
      err << "fleet-sim rack up: no kernel bundle at " << bundle
          << " for new boards (build one: fleetctl kernel build --profile sim/profiles/qemu-virt-stock.yaml --out "
          << bundle << ")\n";
      return 2;
    }
    std::vector<std::string> create = {"create", names[i], "--bundle", bundle, "--ssh-port",
                                       std::to_string(*base + int(i) + 1), "--model-port",
                                       std::to_string(*model_base + int(i) + 1), "--agent",
                                       a->value("agent").value_or("none")};
    for (const char* opt : {"cpus", "memory"}) {  // checked by board create, which names the option
      if (auto v = a->value(opt)) create.insert(create.end(), {std::string("--") + opt, *v});
    }
    if (int rc = board(create); rc != 0) {
      return rc;
    }
  }
  std::vector<std::string> up = {"up"};
  up.insert(up.end(), names.begin(), names.end());
  if (int rc = board(up); rc != 0) return rc;
  out << "waiting for " << names.size() << " boards to answer on SSH (at most " << *wait << " s)...\n" << std::flush;
  std::vector<BoardStatus> statuses;
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(*wait);
  for (const auto& name : names) {
    for (;;) {
      auto s = read_status(BoardFiles{rack / name});
      if (s && s->state == "ready") {
        statuses.push_back(*s);
        break;
      }
      if (std::chrono::steady_clock::now() > until) {
        err << "fleet-sim rack up: " << name << " is not ready after " << *wait << " s; see "
            << BoardFiles{rack / name}.console_log().string() << "\n";
        return 1;
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(250));
    }
  }
  for (const auto& s : statuses) {
    if (s.model_port == 0) {
      err << "fleet-sim rack up: warning: " << s.name << " was made without a fleet-model port forward, so the other "
          << "boards cannot dial it during `fleetctl model push`: "
          << "`fleet-sim board down " << s.name << "`, remove " << (rack / s.name).string() << " and run rack up again\n";
    }
  }
  const auto inventory = rack / "inventory.yml";
  if (auto w = fs::write_file_atomic(inventory, rack_inventory(rack, statuses, a->value("bench").value_or("15m"))); !w) {
    err << "fleet-sim rack up: " << w.error().message << "\n";
    return 1;
  }
  board({"status"});
  out << "rack ready: inventory " << inventory.string() << "\n"
      << "  fleetctl rollout --bundle build/bundles/qemu-virt --inventory " << inventory.string()
      << " --accept-new-host-keys --known-hosts " << (rack / "known_hosts").string()
      << " --report-address 10.0.2.2:50151 --listen 127.0.0.1:50151\n"
      << "  fleetctl model push FILE --inventory " << inventory.string() << " --accept-new-host-keys --known-hosts "
      << (rack / "known_hosts").string() << " --listen 127.0.0.1:0 --advertise 10.0.2.2\n";
  return 0;
}

int light_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string src = FLEET_SOURCE_DIR;
  const std::array options = {
      args::Option{"n", args::Takes::value, "N", "boards pi-1 .. pi-N (default 32)"},
      args::Option{"rack", args::Takes::value, "DIR", "the folder holding the boards (default build/light-rack); it and every folder above it must be root's and not writable by others (sshd's rule for chroots)"},
      args::Option{"bundle", args::Takes::value, "DIR", "the stock kernel bundle new boards start on (default build/bundles/qemu-virt-stock); only its contract and files matter, nothing boots it"},
      args::Option{"base-port", args::Takes::value, "PORT", "board pi-i gets SSH on 127.0.0.1:PORT+i (default 24000)"},
      args::Option{"boot-time", args::Takes::value, "MS", "milliseconds from power-on to sshd and boot-check (default 0)"},
      args::Option{"bench", args::Takes::value, "SHAPE", "fleet_bench in the inventory (default none: the boards run on this machine's CPUs)"},
      args::Option{"models-size", args::Takes::value, "KIB", "each board's /var/lib/fleet/models is a tmpfs of KIB KiB, in its own mounts (a full disk for model pushes; default: the rack folder's disk)"},
      args::Option{"help", args::Takes::nothing, "", "show this help"},
  };
  int code = 0;
  auto a = args::parse_command(argv, options,
                               {"fleet-sim", "fleet-sim light [-n N] [--rack DIR] [options]",
                                "Runs a rack of light boards in the foreground until interrupted (SIGINT, SIGTERM):\n"
                                "no QEMU, each board a folder with its own sshd on loopback, chrooted into the\n"
                                "folder, in mount and PID namespaces of its own. The agent there reads the /proc and\n"
                                "/sys files fleet-sim writes from the booted kernel's contract, and its reboots are\n"
                                "requests fleet-sim carries out: new boot_id, the firmware's choice of kernel\n"
                                "(tryboot.txt once, else config.txt), boot-check and send-reports, sshd again.\n"
                                "For measuring fleetctl at 32 or 128 boards (bench/light_rack.sh); the QEMU boards\n"
                                "prove that kernels work. Needs root. Writes RACK/inventory.yml and RACK/id_ed25519;\n"
                                "prints 'light rack ready' once every board listens. Boards keep their files\n"
                                "between runs; remove the folder for a fresh rack."},
                               out, err, code);
  if (!a) return code;
  auto number = [&](const char* opt, int dflt, int min, int max) -> std::optional<int> {
    auto v = args::int_value(*a, opt, min, max);
    if (!v) {
      err << "fleet-sim light: " << v.error().message << "\n";
      return std::nullopt;
    }
    return v->value_or(dflt);
  };
  auto n = number("n", 32, 1, 1024);
  auto base = number("base-port", 24000, 1024, 64000);
  auto boot_ms = number("boot-time", 0, 0, 600000);
  auto models_kib = number("models-size", 0, 0, 1 << 30);
  if (!n || !base || !boot_ms || !models_kib) return 2;
  if (*base + *n > 65535) {
    err << "fleet-sim light: --base-port " << *base << " leaves no port for pi-" << *n << "\n";
    return 2;
  }
  light::RackOptions o;
  o.rack = a->value("rack").value_or("build/light-rack");
  o.boards = *n;
  o.stock_bundle = a->value("bundle").value_or(src + "/build/bundles/qemu-virt-stock");
  o.base_port = *base;
  o.boot_time = std::chrono::milliseconds(*boot_ms);
  o.bench = a->value("bench").value_or("none");
  o.models_kib = *models_kib;
  ::signal(SIGTERM, on_signal);
  ::signal(SIGINT, on_signal);
  auto r = light::run_rack(o, out, g_stop);
  if (!r) {
    err << "fleet-sim light: " << r.error().message << "\n";
    return 1;
  }
  out << "light rack stopped\n";
  return 0;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << k_usage;
    return 2;
  }
  if (args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    out << k_usage;
    return 0;
  }
  if (args[0] == "boot-verify") return boot_verify({args.begin() + 1, args.end()}, out, err);
  if (args[0] == "board") return board_cmd({args.begin() + 1, args.end()}, out, err);
  if (args[0] == "rack") return rack_cmd({args.begin() + 1, args.end()}, out, err);
  if (args[0] == "light") return light_cmd({args.begin() + 1, args.end()}, out, err);
  err << "fleet-sim: unknown command '" << args[0] << "'\n\n" << k_usage;
  return 2;
}

}  // namespace fleet::sim::cli
