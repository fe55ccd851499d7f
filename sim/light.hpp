#pragma once
// Light boards: a rack of 32 or 128 boards on this machine without QEMU, for measuring the
// controller (bench/light_rack.sh). A light board is a folder. Its root holds what fleetctl
// and the agent touch (/boot/firmware, /etc/fleet-agent, /var/lib/fleet-agent, /usr/local)
// and /proc and /sys files that fleet-sim writes at each power-on from the booted kernel's
// contract; the machine's /usr is bound into it read-only. Each board runs in mount and PID
// namespaces of its own: PID 1 is the board's sshd (loopback, its own port and host key),
// which chroots every session into the board's root, so fleetctl's commands (cat
// /proc/sys/kernel/random/boot_id, fleet-agent install, ...) land on that board's files.
//
// A reboot: the agent writes its request (common/light_board.hpp) where a real board calls
// reboot(2); fleet-sim kills the board's PID 1, which ends every process of the board (its
// SSH sessions drop as a real reboot drops them), chooses the kernel as the Pi 5 firmware
// does (sim/firmware.hpp: tryboot.txt once, else config.txt), writes that kernel's view with
// a new boot_id, and starts the board again: boot-check and send-reports, as the agent's
// units run them, and sshd. Should an agent call reboot(2) anyway (no marker), the PID
// namespace turns it into the end of the board's PID 1, never a restart of this machine.
//
// Light boards prove nothing about kernels: the QEMU boards (sim/board.hpp) do that.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <map>
#include <ostream>
#include <string>

#include "common/bootloader.hpp"
#include "common/contract.hpp"
#include "common/error.hpp"
#include "common/light_board.hpp"

namespace fleet::sim::light {

struct Board {
  std::filesystem::path dir;
  std::filesystem::path root() const { return dir / "root"; }
  std::filesystem::path usr_local() const { return dir / "usr-local"; }  // bound on the root's /usr/local
  std::filesystem::path meta() const { return dir / "board.json"; }
  std::filesystem::path status() const { return dir / "status.json"; }
  std::filesystem::path console() const { return dir / "console.log"; }
  std::filesystem::path sshd_config() const { return dir / "sshd_config"; }
  std::filesystem::path host_key() const { return dir / "ssh_host_ed25519_key"; }
  std::filesystem::path authorized_keys() const { return dir / "authorized_keys"; }
  std::filesystem::path firmware() const { return root() / "boot/firmware"; }
  std::filesystem::path request() const { return root() / fleet::light::k_reboot_request; }
};

// What one power-on shows the board: the kernel's contract and what the firmware gave it.
struct KernelView {
  Contract contract;
  std::string cmdline;  // /proc/cmdline
  bootloader::Info bootloader;
  bool tryboot = false;
  std::string boot_id;
  int memory_mb = 1024;
};

// The files such a kernel shows, by path under the board's root ("proc/sys/kernel/osrelease"
// -> "6.1.0-tuned\n"): what the agent's verify reads, written so that a kernel meeting its
// contract passes it. Pure.
Result<std::map<std::string, std::string>> kernel_files(const KernelView& view);

struct CreateOptions {
  std::filesystem::path dir;           // the board folder (created)
  std::string name;
  int ssh_port = 0;
  std::filesystem::path stock_bundle;  // its first kernel, which has no slot: its contract goes to board.json
  std::filesystem::path authorized_key;
  int memory_mb = 1024;
};
Result<void> create(const CreateOptions& options);

struct Boot {
  std::string kernel;       // path in the boot partition of the kernel that booted
  std::string release;      // its contract's kernel_release
  std::string config_file;  // config.txt or tryboot.txt
  bool tryboot = false;
  std::string boot_id;
};
// The firmware's choice on the board's /boot/firmware, and that kernel's view written under
// its root (the previous /proc and /sys go). The kernel's contract is its slot's contract.json
// (the agent copies it there), or the stock kernel's from board.json. Errors when nothing
// boots: the board stays off.
Result<Boot> power_on(const Board& board, bool tryboot);

// Every folder from / down to `dir` is owned by root and writable by nobody else: sshd's
// rule for ChrootDirectory. The error names the first folder that breaks it.
Result<void> check_chroot_path(const std::filesystem::path& dir);

struct RackOptions {
  std::filesystem::path rack;          // folder of the boards (made if absent)
  int boards = 32;                     // pi-1 .. pi-N
  std::filesystem::path stock_bundle;
  int base_port = 24000;               // pi-i listens on 127.0.0.1:base_port+i
  std::chrono::milliseconds boot_time{0};  // from power-on to sshd and boot-check
  std::string bench = "none";          // fleet_bench in the inventory
  std::int64_t models_kib = 0;         // >0: each board's /var/lib/fleet/models is a tmpfs of this size
};

// Creates the boards that do not exist, writes RACK/inventory.yml (and RACK/id_ed25519),
// starts every board and keeps them running, with reboots as they are asked for, until `stop`.
// Prints "light rack ready" once every board listens. Stops every board before returning.
// Must run as root, single-threaded (it forks into new namespaces).
Result<void> run_rack(const RackOptions& options, std::ostream& out, const std::atomic<bool>& stop);

}  // namespace fleet::sim::light
