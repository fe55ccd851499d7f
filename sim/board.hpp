#pragma once
// A virtual Raspberry Pi 5 board: a folder holding its two disks as Raspberry Pi OS lays out
// an SD card (a FAT32 boot partition, an ext4 root file system: sim/disk_image.hpp), run by a
// firmware emulator that reads the boot partition as the Pi 5 firmware does (sim/firmware.hpp,
// with mtools, never mounting it), starts QEMU with the kernel it chose, learns the tryboot
// flag from the console, and relaunches on reboot. Two watchdogs reset a board: the board's
// own (an i6300esb that systemd pets, as systemd pets the BCM2712's on a Pi) once userland
// runs, and the emulator's "no sign of life" bound for a kernel that never gets that far.
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
inline constexpr const char* k_restart_line = "reboot: Restarting system";
inline constexpr const char* k_power_down_line = "reboot: Power down";
// Printed by the board's own units (sim/rootfs.sh): userland runs and its watchdog is armed;
// sshd listens on port 22.
inline constexpr const char* k_alive_line = "fleet-board: up";
inline constexpr const char* k_ready_line = "fleet-board: ready";
// QEMU's own line when the board's i6300esb expires (-action watchdog=debug: the emulator,
// not QEMU, does the reset, as the Pi 5's PMIC resets the SoC).
inline constexpr const char* k_watchdog_fired_line = "watchdog: timer fired";

// The kernel command line of a fresh board, as Raspberry Pi OS's cmdline.txt has it (root
// mounted read-only, checked, then remounted by systemd), with the root on the second virtio
// disk, DHCP from QEMU, and panic=-1 so that a panic resets at once instead of waiting for
// the watchdog.
inline constexpr const char* k_board_cmdline =
    "console=ttyAMA0 root=/dev/vdb rootfstype=ext4 fsck.repair=yes rootwait ip=dhcp panic=-1";

struct BoardFiles {
  std::filesystem::path dir;
  // The SD card: partition 1 (FAT32 "bootfs", /dev/vda on the board, /boot/firmware) and
  // partition 2 (ext4 "rootfs", /dev/vdb, /).
  std::filesystem::path bootfs() const { return dir / "bootfs.img"; }
  std::filesystem::path rootfs() const { return dir / "rootfs.img"; }
  // The kernel the firmware emulator read from bootfs for the current boot (QEMU's -kernel).
  std::filesystem::path loaded_kernel() const { return dir / "loaded-kernel.img"; }
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
  std::filesystem::path rootfs;         // template folder from sim/rootfs.sh
  std::filesystem::path kernel_bundle;  // its first ("stock") kernel
  std::filesystem::path agent;          // static aarch64 fleet-agent, or empty
  std::filesystem::path authorized_key; // public key that may log in as root
  std::string name;
  int ssh_port = 0;
  int model_port = 0;  // > 0: loopback port forwarded to fleet-model's port on the board (QemuSpec)
  Machine machine = default_machine();
  // Runs on the root file system's folder before it becomes the image, as one edits an SD
  // card before its first boot (tests write the agent's identity with `fleet-agent setup --root`).
  std::function<Result<void>(const std::filesystem::path& root)> prepare_root{};
};

// Makes a board folder: its two disk images (the rootfs template with the bundle's modules,
// fresh host keys and the agent; a boot partition with the bundle's kernel as the stock
// kernel, config.txt and cmdline.txt), board.json and status.json.
Result<void> create_board(const CreateOptions& options);

// Why one boot of a board ended: from what the console showed and what happened to QEMU.
enum class BootEnd {
  powered_off,      // the kernel powered the board off
  reboot,           // a normal reboot
  tryboot_reboot,   // a reboot with the tryboot flag ("reboot '0 tryboot'")
  watchdog_reset,   // the board's watchdog device was not petted in time: reset
  silent,           // no sign of life within the emulator's bound: power-cycled
  reset_early,      // QEMU ended before userland without a reboot line (a panic with panic=-1)
  power_lost,       // QEMU was killed from outside (a power cut): the board stays off
  stopped,          // fleet-sim was told to stop
};
const char* boot_end_name(BootEnd e);
// Whether the board boots again after such an end (the firmware runs again).
bool boots_again(BootEnd e);

// What the runner saw during one boot.
struct BootSignals {
  bool stop_requested = false;   // fleet-sim stopped the board
  bool silent_timeout = false;   // the emulator's bound passed without k_alive_line
  bool watchdog_fired = false;   // k_watchdog_fired_line
  bool killed = false;           // QEMU died of a signal fleet-sim did not send
  bool power_down = false;       // k_power_down_line
  bool tryboot = false;          // k_tryboot_line
  bool restart = false;          // k_restart_line (any reboot)
  bool alive = false;            // k_alive_line
};
// The first matching row of a table in board.cpp decides. Pure.
BootEnd classify_boot_end(const BootSignals& s);

struct BoardStatus {
  std::string name;
  std::string state;        // off, booting, up, ready
  int boots = 0;
  int ssh_port = 0;
  int model_port = 0;       // 0: none forwarded
  std::string kernel;       // path in the boot partition of the running kernel
  std::string release;      // from "fleet-board: up RELEASE"
  bool tryboot = false;     // this boot read tryboot.txt
  bool fell_back = false;   // os_prefix fell back to the unprefixed kernel
  std::string last_event;
  std::string bootloader;   // "2025-03-10 (2bb2ae64)"
  std::string last_end;     // boot_end_name of the last boot's end ("" before the first)
  int watchdog_resets = 0;  // resets by the board's watchdog device
  int silent_resets = 0;    // power-cycles by the emulator's no-sign-of-life bound
  int qemu_pid = 0;         // while QEMU runs (killing it is a power cut)
};
Result<BoardStatus> read_status(const BoardFiles& board);

struct RunOptions {
  BoardFiles board;  // its Machine comes from board.json
  // No k_alive_line in this long: power-cycle (a kernel that never reaches userland, where
  // the board's own watchdog takes over).
  std::chrono::seconds watchdog{120};
  int max_boots = 1000;
};

// Runs the board until it powers off, loses power (QEMU killed from outside), `stop`
// becomes true, or max_boots. Console lines go to console.log; the state to status.json
// after every change.
Result<void> run_board(const RunOptions& options, const std::atomic<bool>& stop);

}  // namespace fleet::sim
