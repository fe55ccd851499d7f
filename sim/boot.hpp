#pragma once
// Boots a bundle's kernel on a one-shot virtual board whose initramfs runs
// `fleet-agent verify` against the bundle's contract and powers off. The proof that a
// kernel we built really shows what its contract says.
#include <chrono>
#include <filesystem>
#include <optional>
#include <string>
#include <vector>

#include "common/bootloader.hpp"
#include "common/error.hpp"
#include "common/process.hpp"

namespace fleet::sim {

struct Userland {
  std::filesystem::path busybox;  // static arm64 busybox (Debian busybox-static:arm64)
  std::filesystem::path agent;    // static aarch64 fleet-agent
};

// The initramfs: busybox, the agent, the contract and an /init that runs the check, then
// `fleet-agent bench BENCH_ARGS --json` when bench_args is not empty.
Result<std::string> verify_initramfs(const Userland& userland, const std::string& contract_json,
                                     const std::vector<std::string>& bench_args = {});

struct VerifyOutput {
  std::optional<std::string> json;  // the agent's one-line JSON report
  std::optional<int> exit_code;     // the agent's exit status
  std::optional<std::string> bench_json;  // fleet-agent bench --json, when asked for
};
// Finds the agent's report between the markers /init prints. Pure.
VerifyOutput parse_verify_console(const std::string& console);

struct BootOptions {
  std::filesystem::path bundle;                 // a kernel bundle (manifest verified first)
  Userland userland;
  std::vector<std::string> extra_cmdline;       // e.g. transparent_hugepage=never
  std::vector<std::string> bench_args;          // set: fleet-agent bench ARGS --json after verify
  int cpus = 2;
  int memory_mb = 1024;
  int numa_nodes = 2;                           // QEMU's; 1 leaves NUMA to numa=fake (rpi5-qemu)
  std::optional<bootloader::Info> bootloader;   // default: sim::k_default_release
  std::chrono::seconds timeout{180};
};

struct BootResult {
  std::string kernel_release;   // from the bundle's manifest
  std::string cmdline;
  std::string console;          // everything the board printed
  bool timed_out = false;
  VerifyOutput verify;
  double seconds = 0;           // QEMU start to power-off
};

// `on_line` sees console lines as they come (may be empty).
Result<BootResult> boot_and_verify(const BootOptions& options, const process::LineSink& on_line);

}  // namespace fleet::sim
