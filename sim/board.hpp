#pragma once
// A virtual Raspberry Pi 5 board: a folder holding its root file system (with the boot
// partition at root/boot/firmware), run by a firmware emulator that picks the kernel as
// the Pi 5 firmware does (sim/firmware.hpp), starts QEMU with it, learns the tryboot flag
// from the console, relaunches on reboot, and power-cycles a board that shows no sign of
// life within the watchdog bound.
#include <atomic>
#include <chrono>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>

#include "common/bootloader.hpp"
#include "common/error.hpp"

namespace fleet::sim {

// Console lines the runner acts on.
inline constexpr const char* k_tryboot_line = "reboot: Restarting system with command '0 tryboot'";
inline constexpr const char* k_power_down_line = "reboot: Power down";
inline constexpr const char* k_alive_line = "fleet-init: up";    // printed by /sbin/fleet-init
inline constexpr const char* k_ready_line = "fleet-init: ready"; // sshd listens on port 22

// The kernel command line of a fresh board: 9p root, our init, DHCP from QEMU.
inline constexpr const char* k_board_cmdline =
    "console=ttyAMA0 root=root rootfstype=9p rootflags=trans=virtio,version=9p2000.L,cache=none rw "
    "init=/sbin/fleet-init ip=dhcp panic=-1";

struct BoardFiles {
  std::filesystem::path dir;
  std::filesystem::path root() const { return dir / "root"; }
  std::filesystem::path boot() const { return dir / "root/boot/firmware"; }
  std::filesystem::path console_log() const { return dir / "console.log"; }
  std::filesystem::path status() const { return dir / "status.json"; }
  std::filesystem::path meta() const { return dir / "board.json"; }
  std::filesystem::path pid() const { return dir / "runner.pid"; }
};

// A board's hardware, fixed when it is made (board.json): what QEMU gives it and the
// bootloader in its EEPROM.
struct Machine {
  int cpus = 2;
  int memory_mb = 1024;
  // NUMA nodes QEMU makes. 1 is a Pi 5: one memory, nodes only from the bootloader's
  // numa=fake=N and a NUMA_EMU kernel (rpi5-qemu). Debian's 6.1 (qemu-virt) has no arm64 NUMA
  // emulation, so its boards get 2 nodes from QEMU to exercise NUMA at all.
  int qemu_numa_nodes = 2;
  bootloader::Info bootloader;  // default_machine() sets the default release
};
Machine default_machine();

struct CreateOptions {
  std::filesystem::path dir;            // the board folder (created)
  std::filesystem::path rootfs;         // template from sim/rootfs.sh
  std::filesystem::path kernel_bundle;  // its first ("stock") kernel
  std::filesystem::path agent;          // static aarch64 fleet-agent, or empty
  std::filesystem::path authorized_key; // public key that may log in as root
  std::string name;
  int ssh_port = 0;
  Machine machine = default_machine();
};

// Makes a board folder: rootfs copy, the bundle's kernel and modules as the stock kernel,
// config.txt and cmdline.txt, fresh host keys, the agent.
Result<void> create_board(const CreateOptions& options);

struct BoardStatus {
  std::string name;
  std::string state;        // off, booting, up, ready
  int boots = 0;
  int ssh_port = 0;
  std::string kernel;       // path in the boot partition of the running kernel
  std::string release;      // from "fleet-init: up RELEASE"
  bool tryboot = false;     // this boot read tryboot.txt
  bool fell_back = false;   // os_prefix fell back to the unprefixed kernel
  std::string last_event;
  std::string bootloader;   // "2025-03-10 (2bb2ae64)"
};
Result<BoardStatus> read_status(const BoardFiles& board);

struct RunOptions {
  BoardFiles board;  // its Machine comes from board.json
  std::chrono::seconds watchdog{120};  // no "fleet-init: up" in this long: power-cycle
  int max_boots = 1000;
};

// Runs the board until it powers off, `stop` becomes true, or max_boots. Console lines go
// to console.log; the state to status.json after every change.
Result<void> run_board(const RunOptions& options, const std::atomic<bool>& stop);

}  // namespace fleet::sim
