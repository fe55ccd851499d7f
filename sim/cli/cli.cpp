#include "sim/cli/cli.hpp"

#include <unistd.h>

#include <array>
#include <iostream>
#include <nlohmann/json.hpp>

#include "common/args.hpp"
#include "sim/boot.hpp"

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
    "\n"
    "Run 'fleet-sim COMMAND --help' for a command's options.\n";

std::vector<std::string> split_words(const std::string& s) {
  std::vector<std::string> out;
  size_t pos = 0;
  while (pos < s.size()) {
    size_t sp = s.find(' ', pos);
    if (sp != pos) out.push_back(s.substr(pos, sp == std::string::npos ? std::string::npos : sp - pos));
    if (sp == std::string::npos) break;
    pos = sp + 1;
  }
  return out;
}

int boot_verify(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::string src = FLEET_SOURCE_DIR;
  const std::array options = {
      args::Option{"bundle", args::Takes::value, "DIR", "kernel bundle from 'fleetctl kernel build' (required)"},
      args::Option{"agent", args::Takes::value, "FILE", "static aarch64 fleet-agent (default: build/aarch64/node-agent/fleet-agent)"},
      args::Option{"busybox", args::Takes::value, "FILE", "static arm64 busybox (default: build/arm64-root/bin/busybox)"},
      args::Option{"append", args::Takes::value, "WORDS", "more kernel command-line words, e.g. transparent_hugepage=never"},
      args::Option{"memory", args::Takes::value, "MB", "board memory (default 1024), split over the NUMA nodes"},
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
    out << "usage: fleet-sim boot-verify --bundle DIR [--append WORDS] [--console] [--json]\n\n"
           "Boots the bundle's kernel in qemu-system-aarch64 (-M virt -cpu max, 2 CPUs, two NUMA\n"
           "nodes) with an initramfs that runs 'fleet-agent verify' against the bundle's contract,\n"
           "then powers off. Exit status 0 when every property passes.\n\noptions:\n"
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
  if (auto w = a->value("append")) o.extra_cmdline = split_words(*w);
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
  bool json = a->flag("json");
  bool echo = a->flag("console");
  std::ostream& progress = json ? err : out;
  if (!json) progress << "booting " << o.bundle.string() << " on a virtual board (QEMU virt, 2 NUMA nodes)...\n";
  auto r = boot_and_verify(o, [&](std::string_view line) {
    if (echo) progress << "  | " << line << "\n";
  });
  if (!r) {
    err << "fleet-sim boot-verify: " << r.error().message << "\n";
    return r.error().code == Errc::not_found || r.error().code == Errc::invalid_input ? 2 : 1;
  }
  nlohmann::json report = r->verify.json ? nlohmann::json::parse(*r->verify.json, nullptr, false) : nlohmann::json();
  bool verified = r->verify.exit_code == 0 && report.is_object() && report.value("ok", false);
  if (json) {
    out << nlohmann::json{{"kernel_release", r->kernel_release}, {"cmdline", r->cmdline}, {"seconds", r->seconds},
                          {"timed_out", r->timed_out}, {"verify_exit", r->verify.exit_code ? *r->verify.exit_code : -1},
                          {"verified", verified}, {"report", report}}
               .dump()
        << "\n";
    return verified ? 0 : 1;
  }
  if (!report.is_object()) {
    out << "the board did not report" << (r->timed_out ? " (timed out)" : "") << "; last console lines:\n"
        << r->console.substr(r->console.size() > 1500 ? r->console.size() - 1500 : 0);
    return 1;
  }
  out << "kernel " << r->kernel_release << ", command line: " << r->cmdline << "\n";
  for (const auto& c : report["checks"]) {
    out << "  " << (c["pass"].get<bool>() ? "pass " : "FAIL ") << c["property"].get<std::string>() << ": expected "
        << c["expected"].get<std::string>() << ", actual " << c["actual"].get<std::string>();
    if (!c["pass"].get<bool>()) out << " (" << c["detail"].get<std::string>() << ")";
    out << "\n";
  }
  if (report.contains("memory") && report["memory"].contains("mem_total_kb")) {
    out << "  memory: MemTotal " << report["memory"]["mem_total_kb"].get<long>() / 1024 << " MiB, MemAvailable "
        << report["memory"]["mem_available_kb"].get<long>() / 1024 << " MiB\n";
  }
  out << (verified ? "VERIFIED" : "NOT VERIFIED") << " in " << static_cast<int>(r->seconds * 10 + 0.5) / 10.0
      << " s from power-on to power-off\n";
  return verified ? 0 : 1;
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
  err << "fleet-sim: unknown command '" << args[0] << "'\n\n" << k_usage;
  return 2;
}

}  // namespace fleet::sim::cli
