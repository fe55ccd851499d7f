#include "sim/light.hpp"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <sched.h>
#include <signal.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <optional>
#include <thread>
#include <utility>
#include <vector>

#include <nlohmann/json.hpp>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/gzip.hpp"
#include "common/process.hpp"
#include "sim/disk_image.hpp"
#include "sim/firmware.hpp"

namespace fleet::sim::light {
namespace stdfs = std::filesystem;
using json = nlohmann::json;

namespace {

std::string be32(std::uint32_t v) {
  const std::uint32_t n = htonl(v);
  return std::string(reinterpret_cast<const char*>(&n), sizeof n);
}

// The first matching row gives a board's /proc/self/smaps page line and config symbol.
std::string page_symbol(long page) { return "CONFIG_ARM64_" + std::to_string(page / 1024) + "K_PAGES=y\n"; }

Result<void> run_quiet(std::vector<std::string> argv) {
  auto out = process::capture({std::move(argv), {}, {}, std::chrono::seconds(60)});
  if (!out) return std::unexpected(out.error());
  return {};
}

Result<void> make_dir(const stdfs::path& p, stdfs::perms mode = stdfs::perms(0755)) {
  std::error_code ec;
  stdfs::create_directories(p, ec);
  if (!ec) stdfs::permissions(p, mode, ec);
  if (ec) return fail(Errc::io, "cannot create " + p.string() + ": " + ec.message());
  return {};
}

Result<void> make_symlink(const stdfs::path& target, const stdfs::path& link) {
  std::error_code ec;
  stdfs::create_symlink(target, link, ec);
  if (ec) return fail(Errc::io, "cannot link " + link.string() + " to " + target.string() + ": " + ec.message());
  return {};
}

bool port_open(int port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return false;
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_port = htons(static_cast<std::uint16_t>(port));
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  const bool ok = ::connect(fd, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0;
  ::close(fd);
  return ok;
}

struct Meta {
  std::string name;
  int ssh_port = 0;
  int memory_mb = 1024;
  Contract stock;
};

Result<Meta> read_meta(const Board& b) {
  auto text = FLEET_TRY(fs::read_file(b.meta()));
  auto j = json::parse(text, nullptr, false);
  const std::string where = b.meta().string();
  if (!j.is_object() || !j.contains("name") || !j["name"].is_string() || !j.contains("ssh_port") ||
      !j["ssh_port"].is_number_integer() || !j.contains("memory_mb") || !j["memory_mb"].is_number_integer() ||
      !j.contains("stock_contract") || !j["stock_contract"].is_object()) {
    return fail(Errc::parse, where + ": not a light board's board.json (name, ssh_port, memory_mb, stock_contract)");
  }
  Meta m;
  m.name = j["name"].get<std::string>();
  m.ssh_port = j["ssh_port"].get<int>();
  m.memory_mb = j["memory_mb"].get<int>();
  if (m.ssh_port < 1 || m.ssh_port > 65535) return fail(Errc::parse, where + ": ssh_port " + std::to_string(m.ssh_port) + " is no port");
  if (m.memory_mb < 256 || m.memory_mb > 65536) {
    return fail(Errc::parse, where + ": memory_mb " + std::to_string(m.memory_mb) + " is outside 256 to 65536");
  }
  m.stock = FLEET_TRY(parse_contract(j["stock_contract"].dump(), where + ": stock_contract"));
  return m;
}

}  // namespace

Result<std::map<std::string, std::string>> kernel_files(const KernelView& v) {
  const Contract& c = v.contract;
  std::map<std::string, std::string> f;
  f["proc/sys/kernel/osrelease"] = c.kernel_release.value_or("unknown") + "\n";
  f["proc/sys/kernel/random/boot_id"] = v.boot_id + "\n";
  const long page = c.page_size.value_or(4096);
  f["proc/self/smaps"] = "KernelPageSize:     " + std::to_string(page / 1024) + " kB\nMMUPageSize:        " +
                         std::to_string(page / 1024) + " kB\n";
  // What a board of this size has left once its kernel is up: a Pi 5's kernel keeps ~50 MB.
  const long total_kb = static_cast<long>(v.memory_mb) * 1024 - 51200;
  f["proc/meminfo"] = "MemTotal:       " + std::to_string(total_kb) + " kB\nMemFree:        " +
                      std::to_string(total_kb * 9 / 10) + " kB\nMemAvailable:   " + std::to_string(total_kb * 9 / 10) +
                      " kB\n";
  f["proc/cmdline"] = v.cmdline + "\n";

  std::string config = "CONFIG_IKCONFIG=y\nCONFIG_IKCONFIG_PROC=y\n" + page_symbol(page);
  const int hz = c.hz.value_or(250);
  config += "CONFIG_HZ_" + std::to_string(hz) + "=y\nCONFIG_HZ=" + std::to_string(hz) + "\n";
  config += "CONFIG_" + c.tick.value_or("NO_HZ_IDLE") + "=y\n";
  if (c.thp) {
    config += "CONFIG_TRANSPARENT_HUGEPAGE=y\n";
    std::string line;
    for (const char* mode : {"always", "madvise", "never"}) {
      if (!line.empty()) line += " ";
      line += *c.thp == mode ? "[" + std::string(mode) + "]" : std::string(mode);
    }
    f["sys/kernel/mm/transparent_hugepage/enabled"] = line + "\n";
  }
  // Nodes: as many as the contract asks for; with emulation, as many as numa=fake=N makes.
  int nodes = 1;
  const auto fake = bootloader::fake_numa_of(v.cmdline);
  if (c.numa_emulation.value_or(false) && fake) nodes = *fake;
  if (c.numa_nodes) nodes = *c.numa_nodes;
  else if (c.numa_nodes_min && nodes < *c.numa_nodes_min) nodes = *c.numa_nodes_min;
  if (nodes < 1 || nodes > 64) {
    return fail(Errc::invalid_input, "the kernel's contract asks for " + std::to_string(nodes) + " NUMA nodes (1 to 64)");
  }
  if (c.numa_emulation.value_or(false)) config += "CONFIG_NUMA=y\nCONFIG_NUMA_EMU=y\n";
  f["sys/devices/system/node/online"] = (nodes == 1 ? std::string("0") : "0-" + std::to_string(nodes - 1)) + "\n";
  f["proc/config.gz"] = FLEET_TRY(gzip::compress(config));
  if (!c.headless.value_or(false)) {
    f["sys/class/drm/card0/dev"] = "226:0\n";
    f["proc/asound/cards"] = " 0 [vc4hdmi0       ]: vc4-hdmi - vc4-hdmi-0\n";
  }
  // The firmware's chosen/bootloader node, as the kernel shows it: big-endian cells, a
  // NUL-terminated string (sim/devicetree.cpp writes the same node for QEMU boards).
  const std::string dt = "proc/device-tree/chosen/bootloader/";
  if (v.bootloader.build_timestamp) f[dt + "build-timestamp"] = be32(static_cast<std::uint32_t>(*v.bootloader.build_timestamp));
  if (v.bootloader.capabilities) f[dt + "capabilities"] = be32(*v.bootloader.capabilities);
  if (!v.bootloader.version.empty()) f[dt + "version"] = v.bootloader.version + std::string(1, '\0');
  f[dt + "tryboot"] = be32(v.tryboot ? 1 : 0);
  f[dt + "partition"] = be32(v.bootloader.partition.value_or(0));
  f[dt + "boot-mode"] = be32(v.bootloader.boot_mode.value_or(1));
  return f;
}

Result<void> check_chroot_path(const stdfs::path& dir) {
  std::error_code ec;
  const auto full = stdfs::weakly_canonical(stdfs::absolute(dir, ec), ec);
  if (ec) return fail(Errc::io, "cannot resolve " + dir.string() + ": " + ec.message());
  for (auto p = full;; p = p.parent_path()) {
    struct stat st{};
    if (::stat(p.c_str(), &st) != 0) {
      if (errno != ENOENT) return fail(Errc::io, "cannot stat " + p.string() + ": " + std::strerror(errno));
    } else if (!S_ISDIR(st.st_mode) || st.st_uid != 0 || (st.st_mode & (S_IWGRP | S_IWOTH)) != 0) {
      char mode[8];
      std::snprintf(mode, sizeof mode, "%04o", static_cast<unsigned>(st.st_mode & 07777));
      return fail(Errc::invalid_input,
                  "light boards cannot live under " + full.string() + ": sshd chroots into them and refuses a path "
                  "with a folder that is not root's or that others may write, and " + p.string() + " is " +
                  (S_ISDIR(st.st_mode) ? "" : "not a folder, ") + "owner " + std::to_string(st.st_uid) + ", mode " +
                  mode + " (choose a folder such as build/light-rack)");
    }
    if (p == p.root_path()) break;
  }
  return {};
}

Result<void> create(const CreateOptions& o) {
  Board b{o.dir};
  if (stdfs::exists(b.dir)) return fail(Errc::invalid_input, "board folder " + b.dir.string() + " already exists");
  auto manifest = FLEET_TRY(bundle::verify(o.stock_bundle));
  auto contract_text = FLEET_TRY(fs::read_file(o.stock_bundle / bundle::k_contract));
  auto stock = FLEET_TRY(parse_contract(contract_text, (o.stock_bundle / bundle::k_contract).string()));
  FLEET_TRY(make_dir(b.dir));
  struct Undo {
    stdfs::path dir;
    bool keep = false;
    ~Undo() {
      std::error_code e;
      if (!keep) stdfs::remove_all(dir, e);
    }
  } undo{b.dir};
  const auto root = b.root();
  for (const char* d : {"", "boot/firmware", "etc/fleet-agent", "var/lib/fleet-agent", "root", "run", "dev", "usr",
                        "proc", "sys", "lib/modules"}) {
    FLEET_TRY(make_dir(root / d));
  }
  FLEET_TRY(make_dir(root / "tmp", stdfs::perms(01777)));
  FLEET_TRY(make_dir(root / "var/tmp", stdfs::perms(01777)));
  FLEET_TRY(make_dir(b.usr_local() / "bin"));
  // /usr is this machine's, read-only; /bin, /sbin and /lib64 lead into it as on a merged-/usr
  // Debian. /lib is the board's own (the agent installs modules into /lib/modules), with a
  // link for each of the machine's library folders.
  for (const char* d : {"bin", "sbin", "lib64"}) FLEET_TRY(make_symlink(std::string("usr/") + d, root / d));
  std::error_code ec;
  for (const auto& e : stdfs::directory_iterator("/usr/lib", ec)) {
    if (e.path().filename() == "modules") continue;
    FLEET_TRY(make_symlink(stdfs::path("../usr/lib") / e.path().filename(), root / "lib" / e.path().filename()));
  }
  if (ec) return fail(Errc::io, "cannot list /usr/lib: " + ec.message());
  // The dynamic loader's cache, so that the machine's programs find their libraries.
  stdfs::copy_file("/etc/ld.so.cache", root / "etc/ld.so.cache", ec);
  if (ec) return fail(Errc::io, "cannot copy /etc/ld.so.cache: " + ec.message());
  FLEET_TRY(fs::write_file_atomic(root / "etc/passwd", "root:x:0:0:root:/root:/bin/bash\n"));
  FLEET_TRY(fs::write_file_atomic(root / "etc/group", "root:x:0:\n"));
  FLEET_TRY(fs::write_file_atomic(root / "etc/hostname", o.name + "\n"));
  FLEET_TRY(fs::write_file_atomic(root / fleet::light::k_marker,
                                  "This board is a folder run by fleet-sim light (sim/light.hpp): fleet-agent reads its\n"
                                  "kernel from /proc and /sys files and asks fleet-sim for reboots.\n"));
  for (const char* d : {"null", "zero", "random", "urandom"}) FLEET_TRY(fs::write_file_atomic(root / "dev" / d, ""));
  // The stock kernel, at the top of the boot partition as on a fresh card. A copy: a hard
  // link would make the bundle's file one that bundle::verify refuses.
  stdfs::copy_file(o.stock_bundle / manifest.image, root / "boot/firmware/kernel_2712.img", ec);
  if (ec) {
    return fail(Errc::io, "cannot copy the stock kernel " + (o.stock_bundle / manifest.image).string() + " to " +
                              (root / "boot/firmware").string() + ": " + ec.message());
  }
  FLEET_TRY(fs::write_file_atomic(root / "boot/firmware/config.txt", "# A light board (fleet-sim light)\n[all]\n"));
  FLEET_TRY(fs::write_file_atomic(root / "boot/firmware/cmdline.txt",
                                  "console=ttyAMA0 root=/dev/mmcblk0p2 rootfstype=ext4 fsck.repair=yes rootwait\n"));
  FLEET_TRY(run_quiet({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", o.name, "-f", b.host_key().string()}));
  auto authorized = FLEET_TRY(fs::read_file(o.authorized_key));
  FLEET_TRY(fs::write_file_atomic(b.authorized_keys(), authorized));
  FLEET_TRY(fs::write_file_atomic(
      b.sshd_config(),
      "# The light board " + o.name + " (fleet-sim light): every session runs chrooted in its root.\n"
      "Port " + std::to_string(o.ssh_port) + "\nListenAddress 127.0.0.1\nHostKey " + b.host_key().string() +
          "\nAuthorizedKeysFile " + b.authorized_keys().string() +
          "\nPidFile none\nStrictModes no\nUsePAM no\nPasswordAuthentication no\nKbdInteractiveAuthentication no\n"
          "PermitRootLogin prohibit-password\nChrootDirectory " + root.string() +
          "\nSubsystem sftp internal-sftp\nMaxStartups 200\nMaxSessions 50\nLogLevel ERROR\n"));
  json meta = {{"name", o.name},
               {"kind", "light"},
               {"ssh_port", o.ssh_port},
               {"memory_mb", o.memory_mb},
               {"stock_release", manifest.kernel_release},
               {"stock_contract", json::parse(contract_to_json(stock))}};
  FLEET_TRY(fs::write_file_atomic(b.meta(), meta.dump(2) + "\n"));
  undo.keep = true;
  return {};
}

Result<Boot> power_on(const Board& b, bool tryboot) {
  auto meta = FLEET_TRY(read_meta(b));
  const auto firmware = b.firmware();
  BootFileReader read = [&](const std::string& path) -> std::optional<std::string> {
    // The path comes from config.txt: inside the partition only.
    if (!disk::image_path_problem(path).empty()) return std::nullopt;
    auto r = fs::read_file(firmware / path);
    if (!r) return std::nullopt;
    return *r;
  };
  auto choice = FLEET_TRY(with_context(choose_boot(read, tryboot), b.dir.filename().string() + " does not boot"));
  Contract contract = meta.stock;
  const auto slash = choice.kernel.rfind('/');
  if (slash != std::string::npos) {
    const std::string file = choice.kernel.substr(0, slash) + "/" + bundle::k_slot_contract;
    auto text = read(file);
    if (!text) return fail(Errc::not_found, b.dir.filename().string() + " does not boot: " + file + " is missing beside " + choice.kernel);
    contract = FLEET_TRY(parse_contract(*text, file));
  }
  KernelView v;
  v.contract = contract;
  v.tryboot = tryboot && choice.config_file == "tryboot.txt";
  v.bootloader = FLEET_TRY(bootloader_release(k_default_release));
  v.memory_mb = meta.memory_mb;
  v.cmdline = kernel_cmdline(choice.cmdline, bootloader::cmdline_words(v.bootloader, meta.memory_mb, board_macaddr(meta.name)));
  auto uuid = FLEET_TRY(fs::read_file("/proc/sys/kernel/random/uuid"));
  while (!uuid.empty() && uuid.back() == '\n') uuid.pop_back();
  v.boot_id = uuid;
  auto files = FLEET_TRY(kernel_files(v));
  std::error_code ec;
  // /run is a tmpfs on a real board: a reboot request of an earlier run is gone too.
  for (const char* d : {"proc", "sys", "run"}) {
    stdfs::remove_all(b.root() / d, ec);
    if (ec) return fail(Errc::io, "cannot clear " + (b.root() / d).string() + ": " + ec.message());
  }
  FLEET_TRY(make_dir(b.root() / "run"));
  for (const auto& [rel, data] : files) {
    const auto p = b.root() / rel;
    stdfs::create_directories(p.parent_path(), ec);
    if (ec) return fail(Errc::io, "cannot create " + p.parent_path().string() + ": " + ec.message());
    FLEET_TRY(fs::write_file_atomic(p, data, fs::FileMode::world_readable, fs::Durability::until_power_cut));
  }
  return Boot{choice.kernel, contract.kernel_release.value_or("unknown"), choice.config_file, v.tryboot, v.boot_id};
}

namespace {

[[noreturn]] void die(const std::string& what) {
  std::fprintf(stderr, "fleet-sim light: %s: %s\n", what.c_str(), std::strerror(errno));
  std::fflush(stderr);
  ::_exit(1);
}

// PID 1 of a board's new mount and PID namespaces (a child of clone): the board's mounts, its
// boot-time units, then sshd. Never returns; on an error it exits and the board is off.
[[noreturn]] void board_init(const Board& b, const std::string& name, const RackOptions& o) {
  const auto boot_time = o.boot_time;
  int log = ::open(b.console().c_str(), O_WRONLY | O_CREAT | O_APPEND | O_CLOEXEC, 0644);
  if (log >= 0) {
    ::dup2(log, 1);
    ::dup2(log, 2);
  }
  // The board ends with fleet-sim, however fleet-sim ends.
  if (::prctl(PR_SET_PDEATHSIG, SIGKILL) != 0) die("asking to end with fleet-sim");
  // Only inside a PID namespace of its own does a reboot(2) end this board rather than the machine.
  if (::getpid() != 1) die("not PID 1 of a new PID namespace; refusing to start the board");
  if (::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr) != 0) die("making the mounts private");
  if (::sethostname(name.data(), name.size()) != 0) die("setting the host name");
  // The boards are the hardware: on a real rack they have CPUs of their own. Here they yield
  // to fleetctl, which is what is measured, and to fleet-sim, which carries out their
  // reboots (at 128 boards under load it got a fortieth of a core and reboots queued).
  if (::setpriority(PRIO_PROCESS, 0, 10) != 0) die("lowering the board's priority");
  auto bind = [&](const stdfs::path& from, const stdfs::path& to, bool read_only) {
    if (::mount(from.c_str(), to.c_str(), nullptr, MS_BIND | MS_REC, nullptr) != 0) die("binding " + from.string() + " on " + to.string());
    if (read_only && ::mount(nullptr, to.c_str(), nullptr, MS_BIND | MS_REMOUNT | MS_RDONLY, nullptr) != 0) {
      die("making " + to.string() + " read-only");
    }
  };
  const auto root = b.root();
  bind("/usr", root / "usr", true);
  bind(b.usr_local(), root / "usr/local", false);
  for (const char* d : {"null", "zero", "random", "urandom"}) bind(stdfs::path("/dev") / d, root / "dev" / d, false);
  if (o.models_kib > 0) {
    // A small disk for models (a full board for `fleetctl model push`), in this board's mounts only.
    const auto models = root / "var/lib/fleet/models";
    std::error_code ec;
    stdfs::create_directories(models, ec);
    const std::string size = "size=" + std::to_string(o.models_kib) + "k,mode=0755";
    if (::mount("tmpfs", models.c_str(), "tmpfs", MS_NOSUID | MS_NODEV, size.c_str()) != 0) die("mounting a tmpfs on " + models.string());
  }
  if (boot_time.count() > 0) std::this_thread::sleep_for(boot_time);
  std::printf("fleet-board: up\n");
  std::fflush(stdout);
  const pid_t units = ::fork();
  if (units == 0) {
    if (::chroot(root.c_str()) != 0 || ::chdir("/") != 0) die("chroot into " + root.string());
    // The agent's two units (fleet-agent setup writes them), in their order.
    ::execl("/bin/sh", "sh", "-c",
            "a=/usr/local/bin/fleet-agent; [ -x $a ] || exit 0; $a boot-check; exec $a send-reports", nullptr);
    die("starting the board's units");
  }
  ::execl("/usr/sbin/sshd", "/usr/sbin/sshd", "-D", "-e", "-f", b.sshd_config().c_str(), nullptr);
  die("starting sshd");
}

// Whether a board's PID 1 runs (its agent has the rest of its states). `stopping`: killed,
// not yet reaped; the kernel tears a namespace down in its own time (seconds under load), so
// the loop does not wait for it and other boards go on.
enum class Power { off, up, stopping };
const char* power_name(Power p) { return p == Power::up ? "up" : p == Power::stopping ? "stopping" : "off"; }

struct Running {
  Board board;
  Meta meta;
  pid_t pid = 0;  // the board's PID 1, as this machine sees it; 0 when off
  int boots = 0;
  Boot boot;
  Power power = Power::off;
  std::string last_event;
  std::optional<bool> boot_after;  // while stopping for a reboot: with the tryboot flag or not
  std::string stop_reason;         // while stopping for good: why
};

Result<void> write_status(const Running& r) {
  json j = {{"name", r.meta.name},       {"kind", "light"},          {"state", power_name(r.power)},
            {"boots", r.boots},          {"ssh_port", r.meta.ssh_port}, {"kernel", r.boot.kernel},
            {"release", r.boot.release}, {"tryboot", r.boot.tryboot},  {"boot_id", r.boot.boot_id},
            {"last_event", r.last_event}};
  return fs::write_file_atomic(r.board.status(), j.dump(2) + "\n", fs::FileMode::world_readable,
                               fs::Durability::until_power_cut);
}

// status.json is for people and tests: a board whose status cannot be written runs on, said so.
void note_status(const Running& r, std::ostream& out) {
  if (auto w = write_status(r); !w) out << r.meta.name << ": " << w.error().message << "\n" << std::flush;
}

// Ends the board's PID 1. The kernel ends every other process of its namespace before PID 1
// can be reaped, so once it is reaped the board's port and files are free.
void stop_board(Running& r) {
  if (r.pid <= 0) return;
  ::kill(r.pid, SIGKILL);
  r.power = Power::stopping;
}
void reap(Running& r) {
  if (r.pid <= 0) return;
  while (::waitpid(r.pid, nullptr, 0) < 0 && errno == EINTR) {
  }
  r.pid = 0;
  r.power = Power::off;
}

// Powers the board on. An error leaves it off (nothing started), with why in its status and
// on `out`; the rest of the rack goes on.
void start(Running& r, bool tryboot, const RackOptions& o, std::ostream& out) {
  auto off = [&](const std::string& why) {
    r.power = Power::off;
    r.last_event = why;
    out << r.meta.name << " is off: " << why << "\n" << std::flush;
    note_status(r, out);
  };
  auto boot = power_on(r.board, tryboot);
  if (!boot) return off(boot.error().message);
  r.boot = *boot;
  ++r.boots;
  std::fflush(nullptr);
  // A fork into new namespaces (mount, PID, host name, IPC): the child is PID 1 of its own.
  const long pid = ::syscall(SYS_clone, CLONE_NEWNS | CLONE_NEWPID | CLONE_NEWUTS | CLONE_NEWIPC | SIGCHLD, nullptr,
                             nullptr, nullptr, nullptr);
  if (pid < 0) return off(std::string("cannot start in new namespaces: ") + std::strerror(errno));
  if (pid == 0) board_init(r.board, r.meta.name, o);
  r.pid = static_cast<pid_t>(pid);
  r.power = Power::up;
  r.last_event = "booted " + boot->kernel + " (" + boot->release + ") from " + boot->config_file;
  note_status(r, out);
}

// The reboot a board's agent asked for, if it asked: the request is read and removed. An
// unreadable or unknown request is an error naming the file (the board is then stopped: a
// request that cannot be removed would reboot it at every look).
Result<std::optional<bool>> take_request(const Board& b) {
  std::error_code ec;
  if (!stdfs::exists(b.request(), ec)) return std::optional<bool>();
  auto text = FLEET_TRY(fs::read_file(b.request()));
  stdfs::remove(b.request(), ec);
  if (ec) return fail(Errc::io, "cannot remove the reboot request " + b.request().string() + ": " + ec.message());
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  if (text == fleet::light::k_request_tryboot) return std::optional<bool>(true);
  if (text == fleet::light::k_request_normal) return std::optional<bool>(false);
  return fail(Errc::parse, b.request().string() + ": '" + text + "' is no reboot request (" +
                               fleet::light::k_request_tryboot + " or " + fleet::light::k_request_normal + ")");
}

std::string inventory_text(const RackOptions& o, const std::vector<Running>& boards) {
  std::string inv = "# The light rack " + o.rack.string() + " (written by fleet-sim light)\n"
                    "all:\n  vars:\n    address: 127.0.0.1\n    user: root\n    key: " +
                    (stdfs::absolute(o.rack) / "id_ed25519").string() + "\n    fleet_bench: " + o.bench +
                    "\n    # The boards share this machine's loopback: each takes any free port for a model push.\n"
                    "    fleet_model_listen: 127.0.0.1:0\n  hosts:\n";
  for (const auto& r : boards) inv += "    " + r.meta.name + ": {port: " + std::to_string(r.meta.ssh_port) + "}\n";
  return inv;
}

}  // namespace

Result<void> run_rack(const RackOptions& options, std::ostream& out, const std::atomic<bool>& stop) {
  // sshd reads its files after chdir("/"): every path it is given is absolute.
  RackOptions o = options;
  o.rack = stdfs::absolute(o.rack);
  o.stock_bundle = stdfs::absolute(o.stock_bundle);
  if (::geteuid() != 0) return fail(Errc::unsupported, "light boards need root: mount and PID namespaces, and sshd");
  if (!stdfs::exists("/usr/sbin/sshd")) return fail(Errc::not_found, "no /usr/sbin/sshd (apt-get install openssh-server)");
  if (o.boards < 1 || o.boards > 1024) return fail(Errc::invalid_input, "-n must be 1 to 1024 boards");
  FLEET_TRY(check_chroot_path(o.rack));  // before anything is made there
  FLEET_TRY(make_dir(o.rack));
  FLEET_TRY(make_dir("/run/sshd"));  // sshd's privilege separation folder
  const auto key = o.rack / "id_ed25519";
  if (!stdfs::exists(key)) FLEET_TRY(run_quiet({"ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "fleet-sim light", "-f", key.string()}));
  std::vector<Running> boards;
  for (int i = 1; i <= o.boards; ++i) {
    Board b{o.rack / ("pi-" + std::to_string(i))};
    if (!stdfs::exists(b.meta())) {
      if (i == 1 || i % 32 == 0) out << "creating " << b.dir.filename().string() << (i == 1 ? "" : " ...") << "\n" << std::flush;
      FLEET_TRY(create({b.dir, b.dir.filename().string(), o.base_port + i, o.stock_bundle, key.string() + ".pub"}));
    }
    Running r;
    r.board = b;
    r.meta = FLEET_TRY(read_meta(b));
    boards.push_back(std::move(r));
  }
  FLEET_TRY(fs::write_file_atomic(o.rack / "inventory.yml", inventory_text(o, boards)));
  // Whatever happens from here, no board outlives this function.
  struct StopAll {
    std::vector<Running>& boards;
    ~StopAll() {
      for (auto& r : boards) stop_board(r);  // every teardown at once
      for (auto& r : boards) reap(r);
    }
  } stop_all{boards};
  for (auto& r : boards) {
    if (port_open(r.meta.ssh_port)) return fail(Errc::invalid_input, r.meta.name + ": port " + std::to_string(r.meta.ssh_port) + " is taken");
    start(r, false, o, out);
  }
  const auto until = std::chrono::steady_clock::now() + std::chrono::seconds(60) + o.boot_time;
  for (auto& r : boards) {
    while (r.pid > 0 && !port_open(r.meta.ssh_port)) {
      if (std::chrono::steady_clock::now() > until || stop) {
        return fail(Errc::timeout, r.meta.name + " does not listen on port " + std::to_string(r.meta.ssh_port) +
                                       "; see " + r.board.console().string());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    if (r.pid <= 0) return fail(Errc::io, r.meta.name + " is off: " + r.last_event);
  }
  out << "light rack ready: " << boards.size() << " boards, inventory " << (o.rack / "inventory.yml").string() << "\n"
      << std::flush;
  while (!stop) {
    for (auto& r : boards) {
      int status = 0;
      if (r.pid > 0 && ::waitpid(r.pid, &status, WNOHANG) == r.pid) {
        r.pid = 0;
        r.power = Power::off;
        if (r.boot_after) {
          const bool tryboot = *r.boot_after;
          r.boot_after.reset();
          start(r, tryboot, o, out);
        } else if (!r.stop_reason.empty()) {
          r.last_event = std::exchange(r.stop_reason, "");
          note_status(r, out);
        } else if (WIFSIGNALED(status) && WTERMSIG(status) == SIGHUP) {
          // No request: a reboot(2) inside the namespace ends its PID 1 with SIGHUP (restart)
          // or SIGINT (power off, halt), as a real board's kernel would restart or stop.
          start(r, false, o, out);
        } else {
          r.last_event = WIFSIGNALED(status) ? "PID 1 ended by signal " + std::to_string(WTERMSIG(status))
                                             : "PID 1 exited with " + std::to_string(WEXITSTATUS(status));
          out << r.meta.name << " is off: " << r.last_event << " (see " << r.board.console().string() << ")\n" << std::flush;
          note_status(r, out);
        }
        continue;
      }
      if (r.power != Power::up) continue;
      auto asked = take_request(r.board);
      if (!asked) {
        r.stop_reason = asked.error().message;
        out << r.meta.name << " stops: " << asked.error().message << "\n" << std::flush;
        stop_board(r);
      } else if (*asked) {
        r.boot_after = **asked;
        stop_board(r);
      }
    }
    ::poll(nullptr, 0, 50);
  }
  return {};
}

}  // namespace fleet::sim::light
