#include "node-agent/cli/cli.hpp"

#include <fcntl.h>
#include <sys/file.h>
#include <unistd.h>

#include <array>
#include <charconv>
#include <cstdlib>
#include <thread>
#include <ostream>

#include <nlohmann/json.hpp>

#include "common/args.hpp"
#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/tls.hpp"
#include "node-agent/bench/bench.hpp"
#include "node-agent/lifecycle/lifecycle.hpp"
#include "node-agent/lifecycle/wire.hpp"
#include "proto/codec.hpp"
#include "node-agent/report/sender.hpp"
#include "node-agent/verify/verify.hpp"

#include "common/build_info.hpp"

#ifndef FLEET_VERSION
#define FLEET_VERSION "0.0.0"
#endif

namespace fleet::agent::cli {
namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_check_failed = 1;
constexpr int k_exit_usage = 2;

const std::string k_usage =
    "usage: fleet-agent COMMAND [OPTIONS]\n"
    "\n"
    "The fleetctl agent on a Raspberry Pi 5 board.\n"
    "\n"
    "commands:\n"
    "  verify        check the running kernel against a bundle's contract\n"
    "  install       copy a kernel bundle into a new slot of /boot/firmware\n"
    "  tryboot       reboot once into the installed slot (the Pi 5 tryboot flag)\n"
    "  boot-check    at boot: verify a trial boot, then commit it or fall back\n"
    "  rollback      return to the previous committed kernel and reboot\n"
    "  status        the agent's state: committed kernel, update in progress, last outcome\n"
    "  send-reports  deliver pending reports to the controller (retries with backoff)\n"
    "  setup         write the board's identity and the systemd units\n"
    "  bench         measure memory bandwidth and model throughput (tokens/s)\n"
    "  units         write the agent's systemd units into a folder (packaging)\n"
    "  version       print the agent version\n"
    "\n"
    "Run 'fleet-agent COMMAND --help' for a command's options.\n";

const std::array k_verify_options = {
    args::Option{"contract", args::Takes::value, "FILE", "the contract (contract.json of a bundle); required"},
    args::Option{"root", args::Takes::value, "DIR",
                 "read /proc and /sys under DIR instead of the running system (tests, rescue)"},
    args::Option{"json", args::Takes::nothing, "", "print one JSON object instead of a table"},
    args::Option{"help", args::Takes::nothing, "", "show this help"},
};

int verify(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  auto parsed = args::parse(argv, k_verify_options);
  if (!parsed) {
    err << "fleet-agent verify: " << parsed.error().message << "\n";
    return k_exit_usage;
  }
  if (parsed->flag("help")) {
    out << "usage: fleet-agent verify --contract FILE [--root DIR] [--json]\n\n"
           "Checks page size, Transparent HugePages mode, NUMA nodes, CONFIG_HZ, tick mode,\n"
           "kernel release and headless state of the running kernel against the contract.\n"
           "Exit status: 0 all properties pass, 1 at least one fails, 2 bad usage or input.\n\n"
        << args::help(k_verify_options);
    return k_exit_ok;
  }
  if (!parsed->positional.empty()) {
    err << "fleet-agent verify: unexpected argument '" << parsed->positional.front() << "'\n";
    return k_exit_usage;
  }
  auto contract_path = parsed->value("contract");
  if (!contract_path) {
    err << "fleet-agent verify: --contract FILE is required (the contract.json of a bundle)\n";
    return k_exit_usage;
  }
  auto text = fs::read_file(*contract_path);
  if (!text) {
    err << "fleet-agent verify: " << text.error().message << "\n";
    return k_exit_usage;
  }
  auto contract = parse_contract(*text, *contract_path);
  if (!contract) {
    err << "fleet-agent verify: " << contract.error().message << "\n";
    return k_exit_usage;
  }
  auto root = parsed->value("root");
  Observations obs = root ? observe(*root, Source::folder) : observe("/", Source::live);
  Report report = evaluate(*contract, obs);
  if (parsed->flag("json")) {
    // One line: the virtual boards' console carries it to fleet-sim line by line.
    auto printed = wire::to_json(verification_message(report));
    if (!printed) {
      err << "fleet-agent verify: " << printed.error().message << "\n";
      return k_exit_check_failed;  // unreported is not verified
    }
    out << *printed << "\n";
  } else {
    out << report_table(report);
  }
  return report.ok() ? k_exit_ok : k_exit_check_failed;
}


const args::Option k_root_option{"root", args::Takes::value, "DIR", "the board's root (default /); tests use a folder"};
const args::Option k_help_option{"help", args::Takes::nothing, "", "show this help"};

// Parses options; prints help (exit 0) or a usage error (exit 2) itself.
std::optional<args::Parsed> parse(const std::vector<std::string>& argv, std::span<const args::Option> options,
                                  const std::string& synopsis, const std::string& what, std::ostream& out,
                                  std::ostream& err, int& code) {
  return args::parse_command(argv, options, args::Usage{"fleet-agent", synopsis, what}, out, err, code);
}

std::filesystem::path root_of(const args::Parsed& a) { return a.value("root").value_or("/"); }

// flock(2) on /var/lib/fleet-agent/lock for the life of a lifecycle command.
class AgentLock {
 public:
  AgentLock() = default;
  AgentLock(AgentLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  AgentLock& operator=(AgentLock&& o) noexcept {
    std::swap(fd_, o.fd_);
    return *this;
  }
  ~AgentLock() {
    if (fd_ >= 0) ::close(fd_);
  }
  static Result<AgentLock> take(const std::filesystem::path& dir, std::chrono::seconds wait) {
    std::error_code ec;
    std::filesystem::create_directories(dir, ec);
    AgentLock l;
    l.fd_ = ::open((dir / "lock").c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (l.fd_ < 0) return fail(Errc::io, "cannot open " + (dir / "lock").string());
    auto until = std::chrono::steady_clock::now() + wait;
    while (::flock(l.fd_, LOCK_EX | LOCK_NB) != 0) {
      if (std::chrono::steady_clock::now() > until) {
        return fail(Errc::timeout, "another fleet-agent command holds " + (dir / "lock").string());
      }
      std::this_thread::sleep_for(std::chrono::milliseconds(200));
    }
    return l;
  }

 private:
  int fd_ = -1;
};

std::string board_id_of(const std::filesystem::path& root) {
  auto text = fs::read_file(root / k_agent_config);
  if (!text) return "unconfigured";
  auto cfg = parse_agent_config(*text, k_agent_config);
  return cfg ? cfg->board_id : "unconfigured";
}

int lifecycle_error(const char* cmd, const Error& e, std::ostream& err) {
  err << "fleet-agent " << cmd << ": " << e.message << "\n";
  return e.code == Errc::invalid_input || e.code == Errc::not_found ? k_exit_usage : k_exit_check_failed;
}

// A whole-number option; prints the usage error itself and sets `bad`.
std::optional<int> int_option(const args::Parsed& a, const char* name, int min, int max, std::ostream& err, bool& bad,
                              const char* cmd = "bench") {
  auto v = args::int_value(a, name, min, max);
  if (!v) {
    err << "fleet-agent " << cmd << ": " << v.error().message << "\n";
    bad = true;
    return std::nullopt;
  }
  return *v;
}

int lifecycle_command(const std::string& cmd, const std::vector<std::string>& argv, std::ostream& out,
                      std::ostream& err) {
  std::vector<args::Option> options = {k_root_option, k_help_option};
  std::string synopsis = "fleet-agent " + cmd + " [--root DIR]";
  std::string what;
  if (cmd == "install") {
    options.push_back({"bundle", args::Takes::value, "DIR", "the kernel bundle (required)"});
    options.push_back({"rollout", args::Takes::value, "ID", "the rollout this install belongs to (in reports)"});
    options.push_back({"bench", args::Takes::value, "SHAPE",
                       "after the trial boot passes, measure tokens/s with the probe: 7b, 3b, 1b, 110m, 15m or auto"});
    options.push_back({"model", args::Takes::value, "FILE", "measure with this GGUF model instead (llama-bench if present)"});
    options.push_back({"bench-threads", args::Takes::value, "N", "threads for the measurement (default: every CPU)"});
    options.push_back({"min-tokens-per-s", args::Takes::value, "RATE",
                       "fail the verification below this rate (implies --bench auto)"});
    options.push_back({"max-regression", args::Takes::value, "PERCENT",
                       "fail the verification when the trial kernel is slower than the committed one by more than\n"
                       "PERCENT (e.g. 3) beyond the noise of both measurements (implies --bench auto)"});
    options.push_back({"bench-max-seconds", args::Takes::value, "S",
                       "the measurement at boot takes at most S seconds, up to 240 (default 60; implies --bench auto)"});
    synopsis = "fleet-agent install --bundle DIR [--rollout ID] [--bench SHAPE|--model FILE] [--min-tokens-per-s RATE]";
    what = "Checks every file of the bundle against its manifest, its signature when the board trusts\n"
           "keys (/etc/fleet-agent/trusted-keys, see setup --trust-key), the contract, and the room on\n"
           "the boot partition, changing nothing if any is wrong. Then copies the kernel, dtbs, overlays and\n"
           "cmdline.txt into a new slot folder of /boot/firmware, the modules into /lib/modules/RELEASE,\n"
           "and writes tryboot.txt (config.txt with os_prefix=SLOT/). config.txt is not touched.\n"
           "With --bench, --model or --min-tokens-per-s, install first measures the running (committed)\n"
           "kernel's tokens/s (or reuses its measurement from the last day), and boot-check measures the\n"
           "trial kernel the same way once it passes its contract (see 'fleet-agent bench'), adds a\n"
           "tokens_per_s check and reports both figures; with --max-regression, a tokens_per_s_change\n"
           "check fails a trial kernel slower than that beyond the noise of the two measurements.\n"
           "\n"
           "Refused, naming the field or file, with nothing changed: a build_key that is not 64 lowercase\n"
           "hex digits, a kernel_release outside [A-Za-z0-9._+-] (or '.', '..', over 64 characters), a file\n"
           "path that is absolute or has '..', a cmdline word with a space or control character, and\n"
           "anything in the bundle but regular files and folders (symlinks, FIFOs, devices, sockets,\n"
           "hard links, setuid/setgid files): these names become paths on the board and words of\n"
           "cmdline.txt. Exactly the manifest's files are copied, each hashed again as it is read.";
  } else if (cmd == "tryboot") {
    what = "Reboots once into the installed slot with reboot(LINUX_REBOOT_CMD_RESTART2, \"0 tryboot\").\n"
           "A crash or reset of the trial kernel lands on the committed kernel again. Refused with a\n"
           "--root other than /: it would reboot this machine, not the board whose files are there.";
  } else if (cmd == "boot-check") {
    what = "Runs at every boot (the fleet-agent-boot-check unit). After a trial boot it checks the running\n"
           "kernel against the slot's contract (kernel release first) and commits the slot, or reboots\n"
           "into the committed kernel and records why. Reports go to the outbox (send-reports).";
  } else if (cmd == "rollback") {
    what = "Points config.txt back at the previous committed slot and reboots. Refused with a --root\n"
           "other than / (it would reboot this machine).";
  } else if (cmd == "status") {
    options.push_back({"json", args::Takes::nothing, "", "print the state as JSON"});
    what = "Shows the committed and previous kernels, the update in progress and the last outcome.";
  }
  int code = 0;
  auto a = parse(argv, options, synopsis, what, out, err, code);
  if (!a) return code;
  const auto root = root_of(*a);
  if ((cmd == "tryboot" || cmd == "rollback") && a->value("root")) {
    std::error_code ec;
    if (std::filesystem::weakly_canonical(root, ec) != std::filesystem::path("/")) {
      // Checked before anything changes: the reboot would restart this machine, not the
      // board whose files are under DIR.
      err << "fleet-agent " << cmd << ": refusing with --root " << root.string()
          << ": " << cmd << " reboots, and a reboot here would restart this machine, not that board; "
          << "nothing was changed\n";
      return k_exit_usage;
    }
  }
  RealDisk disk;
  RealSystem system(root);
  std::vector<signing::PublicKey> trusted;
  std::string trust_error;  // status shows it; install refuses
  if (cmd == "install" || cmd == "status") {
    auto keys = bundle::load_trusted_keys(BoardPaths{root}.trusted_keys());
    if (!keys && cmd == "install") return lifecycle_error("install", keys.error(), err);
    if (keys) trusted = std::move(*keys);
    else trust_error = keys.error().message;
  }
  Agent agent(Context{BoardPaths{root}, disk, system, board_id_of(root), trusted});
  // One lifecycle command at a time: the lock also tells install that a state left at
  // "installing" belongs to a process that is gone.
  AgentLock lock;
  if (cmd != "status") {
    auto l = AgentLock::take(BoardPaths{root}.state_dir(), std::chrono::seconds(60));
    if (!l) return lifecycle_error(cmd.c_str(), l.error(), err);
    lock = std::move(*l);
  }
  if (cmd == "status") {
    auto st = agent.load();
    if (!st) return lifecycle_error("status", st.error(), err);
    if (a->flag("json")) {
      // The controller reads this (fleet.v1.AgentStatus), through the same codec.
      auto m = status_message(*st);
      for (const auto& k : trusted) m.add_trusted_keys(k.id);
      m.set_trust_error(trust_error);
      m.set_running_release(system.running_release());
      m.set_version(FLEET_VERSION);
      auto text = wire::to_json(m, wire::Layout::indented);
      if (!text) return lifecycle_error("status", text.error(), err);
      out << *text;
      return k_exit_ok;
    }
    out << "state:     " << state_name(st->state) << "\n";
    out << "committed: " << st->committed.release << " (slot " << (st->committed.name.empty() ? "stock" : st->committed.name) << ")\n";
    if (st->previous) out << "previous:  " << st->previous->release << " (slot " << (st->previous->name.empty() ? "stock" : st->previous->name) << ")\n";
    if (st->target) out << "update:    " << st->target->slot.release << " (slot " << st->target->slot.name << ")\n";
    if (st->last) out << "last:      " << phase_name(st->last->phase) << ": " << st->last->message << "\n";
    std::string ids;
    for (const auto& k : trusted) ids += (ids.empty() ? "" : ", ") + k.id;
    out << "trusted:   "
        << (!trust_error.empty() ? "cannot read the keys (install refuses until fixed): " + trust_error
            : ids.empty()        ? std::string("no keys: unsigned bundles install")
                                 : "bundles signed by " + ids)
        << "\n";
    return k_exit_ok;
  }
  Result<void> r;
  if (cmd == "install") {
    auto bundle = a->value("bundle");
    if (!bundle) {
      err << "fleet-agent install: --bundle DIR is required\n";
      return k_exit_usage;
    }
    std::optional<BenchSpec> bench;
    if (a->value("bench") || a->value("model") || a->value("min-tokens-per-s") || a->value("bench-threads") ||
        a->value("bench-max-seconds") || a->value("max-regression")) {
      bench = BenchSpec{};
      bench->shape = a->value("bench").value_or("auto");
      bench->model = a->value("model").value_or("");
      bool bad = false;
      bench->threads = int_option(*a, "bench-threads", 1, 1024, err, bad, "install").value_or(0);
      bench->max_seconds = int_option(*a, "bench-max-seconds", 1, 240, err, bad, "install").value_or(0);
      if (auto m = a->value("min-tokens-per-s")) {
        char* end = nullptr;
        bench->min_tokens_per_s = std::strtod(m->c_str(), &end);
        if (m->empty() || *end != '\0' || !(bench->min_tokens_per_s >= 0) || bench->min_tokens_per_s > 1e6) {
          err << "fleet-agent install: --min-tokens-per-s must be a rate such as 2.5, got '" << *m << "'\n";
          bad = true;
        }
      }
      if (auto m = a->value("max-regression")) {
        std::string v = *m;
        if (v.ends_with('%')) v.pop_back();
        double pct = 0;
        auto [p, ec] = std::from_chars(v.data(), v.data() + v.size(), pct);
        if (v.empty() || ec != std::errc{} || p != v.data() + v.size() || !(pct > 0) || pct >= 100) {
          err << "fleet-agent install: --max-regression must be a percentage above 0 and below 100 such as 3, got '"
              << *m << "'\n";
          bad = true;
        } else {
          bench->max_regression = pct / 100;
        }
      }
      if (bad) return k_exit_usage;
    }
    r = agent.install(*bundle, a->value("rollout").value_or(""), bench);
    if (r) {
      out << "installed";
      if (!trusted.empty()) out << " (signature checked: the bundle is signed by a key this board trusts)";
      out << ": reboot with 'fleet-agent tryboot' to try it once\n";
    }
  } else if (cmd == "tryboot") {
    r = agent.tryboot();
  } else if (cmd == "boot-check") {
    r = agent.boot_check();
  } else if (cmd == "rollback") {
    r = agent.rollback();
  }
  if (!r) return lifecycle_error(cmd.c_str(), r.error(), err);
  return k_exit_ok;
}

int send_reports(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {k_root_option,
                              args::Option{"give-up-after", args::Takes::value, "SECONDS",
                                           "stop retrying after this long (default 600); the reports stay queued"},
                              k_help_option};
  int code = 0;
  auto a = parse(argv, options, "fleet-agent send-reports [--give-up-after SECONDS] [--root DIR]",
                 "Sends the outbox to the controller named in /etc/fleet-agent/agent.json, oldest first,\n"
                 "over TLS: the controller must show a certificate from /etc/fleet-agent/ca.pem (nothing\n"
                 "else is trusted, and nothing is sent in plaintext). Retries an unreachable controller with\n"
                 "exponential backoff (1 s to 60 s); stops at once on a refused token or a wrong certificate.",
                 out, err, code);
  if (!a) return code;
  const auto root = root_of(*a);
  RealDisk disk;
  auto config = load_agent_config(root, disk);
  if (!config) {
    err << "fleet-agent send-reports: " << config.error().message << "\n";
    return k_exit_usage;
  }
  SendOptions opt;
  if (auto g = a->value("give-up-after")) {
    try {
      opt.give_up_after = std::chrono::seconds(std::stoi(*g));
    } catch (const std::exception&) {
      err << "fleet-agent send-reports: --give-up-after must be a number of seconds\n";
      return k_exit_usage;
    }
  }
  auto r = send_outbox(BoardPaths{root}, disk, *config, opt);
  if (!r) {
    err << "fleet-agent send-reports: " << r.error().message << "\n";
    return k_exit_check_failed;
  }
  out << "sent " << r->sent << " reports";
  if (r->set_aside > 0) out << "; " << r->set_aside << " of another rollout set aside (*.json.stale)";
  out << "\n";
  return k_exit_ok;
}

// The agent's two units: boot-check at every boot (before the network: a trial kernel is
// judged, committed or given up on its own), send-reports once the network is up. `setup`
// writes them to the board's /etc/systemd/system for the agent fleetctl pushed; `units`
// writes them for a package (/usr/bin/fleet-agent, installed under /lib/systemd/system).
std::vector<std::pair<std::string, std::string>> systemd_units(const std::string& agent) {
  return {
      {"fleet-agent-boot-check.service",
       "[Unit]\nDescription=fleetctl: verify a trial kernel, commit or fall back\nDefaultDependencies=no\n"
       "After=local-fs.target\nBefore=network-online.target\n\n[Service]\nType=oneshot\nExecStart=" + agent +
       " boot-check\nRemainAfterExit=yes\n\n[Install]\nWantedBy=multi-user.target\n"},
      {"fleet-agent-reports.service",
       "[Unit]\nDescription=fleetctl: deliver the agent's reports\nAfter=network-online.target "
       "fleet-agent-boot-check.service\nWants=network-online.target\n\n[Service]\nType=oneshot\nExecStart=" + agent +
       " send-reports\n\n[Install]\nWantedBy=multi-user.target\n"},
  };
}

int units_command(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"agent", args::Takes::value, "PATH", "the agent the units run (default /usr/bin/fleet-agent)"},
      args::Option{"help", args::Takes::nothing, "", "show this help"},
  };
  auto a = args::parse(argv, options);
  if (!a) {
    err << "fleet-agent units: " << a.error().message << "\n";
    return k_exit_usage;
  }
  if (a->flag("help") || a->positional.size() != 1) {
    (a->flag("help") ? out : err) << "usage: fleet-agent units DIR [--agent PATH]\n\n"
                                     "Writes the agent's systemd units into DIR (for a package: /lib/systemd/system).\n"
                                     "'setup' writes the same units on a board, for the agent fleetctl pushed.\n\n"
                                  << args::help(options);
    return a->flag("help") ? k_exit_ok : k_exit_usage;
  }
  const std::filesystem::path dir = a->positional[0];
  for (const auto& [name, text] : systemd_units(a->value("agent").value_or("/usr/bin/fleet-agent"))) {
    if (auto w = fs::write_file_atomic(dir / name, text); !w) {
      err << "fleet-agent units: " << w.error().message << "\n";
      return k_exit_check_failed;
    }
    out << (dir / name).string() << "\n";
  }
  return k_exit_ok;
}

int setup(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      k_root_option,
      args::Option{"board-id", args::Takes::value, "ID", "the board's name in the inventory (required)"},
      args::Option{"controller", args::Takes::value, "HOST:PORT", "fleetctl's report service (required)"},
      args::Option{"token", args::Takes::value, "TOKEN", "the board's secret for reports (required)"},
      args::Option{"ca", args::Takes::value, "FILE",
                   "the controller's CA certificate (fleetctl's tls/ca.pem; required): reports go only to a "
                   "controller with a certificate from it"},
      args::Option{"agent-path", args::Takes::value, "FILE", "where the agent binary lives (default /usr/local/bin/fleet-agent)"},
      args::Option{"trust-key", args::Takes::value, "FILE",
                   "an Ed25519 public key (PEM): from now on install takes only bundles it (or another trusted key) signed"},
      k_help_option};
  int code = 0;
  auto a = parse(argv, options,
                 "fleet-agent setup --board-id ID --controller HOST:PORT --token TOKEN --ca FILE [--trust-key FILE] "
                 "[--root DIR]",
                 "Writes /etc/fleet-agent/agent.json (mode 0600), the controller's CA certificate to\n"
                 "/etc/fleet-agent/ca.pem (replacing the one there: a board reports to one controller) and\n"
                 "the systemd units that run boot-check and send-reports at every boot, enabled for\n"
                 "multi-user.target. --ca must be one self-signed CA certificate; a server certificate, a key\n"
                 "or several certificates are refused before anything is written. --trust-key adds a key to\n"
                 "/etc/fleet-agent/trusted-keys/ID.pem; keys are only added, never removed by setup (delete\n"
                 "the file to stop trusting one). With no trusted key, install takes unsigned bundles.",
                 out, err, code);
  if (!a) return code;
  if (!a->value("board-id") || !a->value("controller") || !a->value("token") || !a->value("ca")) {
    err << "fleet-agent setup: --board-id, --controller, --token and --ca are required\n";
    return k_exit_usage;
  }
  const auto root = root_of(*a);
  // The CA is checked before anything is written: a board set up with a wrong file would
  // refuse every controller, silently, at its next boot.
  auto ca_text = fs::read_file(*a->value("ca"));
  if (!ca_text) {
    err << "fleet-agent setup: --ca: " << ca_text.error().message << "\n";
    return k_exit_usage;
  }
  auto ca = tls::parse_ca_certificate(*ca_text, *a->value("ca"));
  if (!ca) {
    err << "fleet-agent setup: --ca: " << ca.error().message << "\n";
    return k_exit_usage;
  }
  std::optional<signing::PublicKey> trust;
  if (auto f = a->value("trust-key")) {
    auto key = signing::read_public(*f);
    if (!key) {
      err << "fleet-agent setup: --trust-key: " << key.error().message << "\n";
      return k_exit_usage;
    }
    trust = *key;
  }
  const std::string agent = a->value("agent-path").value_or("/usr/local/bin/fleet-agent");
  nlohmann::json j = {{"board_id", *a->value("board-id")}, {"controller", *a->value("controller")},
                      {"token", *a->value("token")}};
  std::error_code ec;
  std::filesystem::create_directories(root / "etc/fleet-agent", ec);
  std::filesystem::create_directories(root / "etc/systemd/system/multi-user.target.wants", ec);
  // The token's file is 0600 from its first byte (never 0644 between write and chmod).
  auto w = fs::write_file_atomic(root / k_agent_config, j.dump(2) + "\n", fs::FileMode::owner_only);
  if (w) w = fs::write_file_atomic(root / k_agent_ca, ca->pem);
  for (const auto& [name, text] : systemd_units(agent)) {
    if (w) w = fs::write_file_atomic(root / "etc/systemd/system" / name, text);
    auto link = root / "etc/systemd/system/multi-user.target.wants" / name;
    std::filesystem::remove(link, ec);
    std::filesystem::create_symlink(std::string("../") + name, link, ec);
  }
  if (w && trust) {
    const auto dir = BoardPaths{root}.trusted_keys();
    std::filesystem::create_directories(dir, ec);
    w = fs::write_file_atomic(dir / (trust->id + ".pem"), trust->pem);
  }
  if (!w) {
    err << "fleet-agent setup: " << w.error().message << "\n";
    return k_exit_check_failed;
  }
  out << "board " << *a->value("board-id") << " set up: reports go to " << *a->value("controller")
      << " over TLS, checked against " << ca->subject << " (sha256 " << ca->fingerprint.substr(0, 16) << ")\n";
  if (trust) out << "trusted key " << trust->id << ": install takes bundles it signed\n";
  return k_exit_ok;
}

int bench_command(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"model", args::Takes::value, "FILE", "a GGUF model: the probe takes its shape; llama-bench runs it"},
      args::Option{"model-shape", args::Takes::value, "SHAPE",
                   "7b, 3b, 1b, 110m, 15m or auto (default: the largest that fits in half the free memory)"},
      args::Option{"threads", args::Takes::value, "N", "threads for the probe and the all-thread bandwidth (default: every CPU)"},
      args::Option{"tokens", args::Takes::value, "N", "time at least N tokens (default 16)"},
      args::Option{"min-seconds", args::Takes::value, "S", "and for at least S seconds (default 2)"},
      args::Option{"max-seconds", args::Takes::value, "S",
                   "but never longer than S seconds: a figure cut there says so (default 60)"},
      args::Option{"context", args::Takes::value, "N",
                   "tokens run at positions 0..N-1, attention reading the KV cache that far (default 128, "
                   "llama-bench's tg128), in bit-reversed order (0, 64, 32, 96, ...), so that a few timed tokens read about the "
                   "whole run's mix of KV lengths (exactly, every 4 tokens, at 128)"},
      args::Option{"size-mib", args::Takes::value, "MIB", "bandwidth array size (default max(256 MiB, 4 x last-level cache))"},
      args::Option{"repetitions", args::Takes::value, "N", "bandwidth repetitions, the best counts (default 5)"},
      args::Option{"path", args::Takes::value, "PATH", "dot product: portable, avx2, avx-vnni or neon-dotprod (default: the fastest here)"},
      args::Option{"layout", args::Takes::value, "LAYOUT",
                   "the weights' layout: rows, q4_0_4x4, q4_0_4x8 or q4_0_8x8 (default: what llama.cpp's CPU backend "
                   "repacks Q4_0 into on this CPU: 8x8 with AVX2, 4x8 with Arm i8mm, 4x4 with the Arm dot product)"},
      args::Option{"sync", args::Takes::value, "HOW",
                   "how the probe's threads meet after each node: gomp (libgomp's barrier, as ggml in llama.cpp's "
                   "default build; the default) or spin (ggml's spinning barrier, as a build without OpenMP)"},
      args::Option{"no-bandwidth", args::Takes::nothing, "", "skip the bandwidth measurement"},
      args::Option{"no-probe", args::Takes::nothing, "", "skip the token-generation probe"},
      args::Option{"hugepage", args::Takes::nothing, "",
                   "hold the probe's weights with MADV_HUGEPAGE (what llama.cpp gets when run with "
                   "GLIBC_TUNABLES=glibc.malloc.hugetlb=1). Default: no advice, as llama.cpp holds its own, so the "
                   "kernel's THP mode decides: base pages under madvise, huge pages under always"},
      args::Option{"no-hugepage", args::Takes::nothing, "", "hold the probe's weights with MADV_NOHUGEPAGE"},
      args::Option{"llama-bench", args::Takes::value, "PROGRAM", "llama-bench to run with --model (default: llama-bench on PATH)"},
      args::Option{"self-test", args::Takes::nothing, "",
                   "check every dot-product path and repacked layout this CPU has against the scalar reference, then exit"},
      args::Option{"json", args::Takes::nothing, "", "print one JSON object instead of a table"},
      k_help_option};
  int code = 0;
  auto a = parse(argv, options, "fleet-agent bench [--model FILE | --model-shape SHAPE] [--threads N] [--json]",
                 "Measures what decides tokens/s on a Pi 5: memory bandwidth (read, copy, triad; one and all\n"
                 "threads; with and without MADV_HUGEPAGE), and a token-generation probe that decodes tokens of\n"
                 "a llama-shaped model held in memory: Q4_0 weights x Q8_0 activations through every matrix of\n"
                 "every layer, the ggml block layouts and arithmetic, threads spread over the NUMA nodes. The\n"
                 "probe's weights are synthetic; its arithmetic and memory traffic are real. With --model and\n"
                 "llama-bench on the board, llama-bench -o json runs too. Exit 0, or 2 on bad usage.",
                 out, err, code);
  if (!a) return code;
  if (!a->positional.empty()) {
    err << "fleet-agent bench: unexpected argument '" << a->positional.front() << "'\n";
    return k_exit_usage;
  }
  if (a->flag("self-test")) {
    auto r = bench::self_test_dot();
    if (!r) {
      err << r.error().message;
      return k_exit_check_failed;
    }
    out << *r;
    return k_exit_ok;
  }
  if (a->value("model") && a->value("model-shape")) {
    err << "fleet-agent bench: give --model or --model-shape, not both\n";
    return k_exit_usage;
  }
  bench::BenchOptions o;
  bool bad = false;
  o.threads = int_option(*a, "threads", 1, 1024, err, bad).value_or(0);
  if (auto t = int_option(*a, "tokens", 1, 1000000, err, bad)) o.probe_options.min_tokens = *t;
  if (auto t = int_option(*a, "min-seconds", 0, 3600, err, bad)) o.probe_options.min_time = std::chrono::seconds(*t);
  if (auto t = int_option(*a, "max-seconds", 1, 3600, err, bad)) o.probe_options.max_time = std::chrono::seconds(*t);
  if (!bad && o.probe_options.max_time < o.probe_options.min_time) {
    err << "fleet-agent bench: --max-seconds is below --min-seconds\n";
    bad = true;
  }
  if (auto c = int_option(*a, "context", 1, bench::k_max_context, err, bad)) o.probe_options.context = *c;
  if (auto m = int_option(*a, "size-mib", 1, 1 << 20, err, bad)) o.bw.array_bytes = std::size_t(*m) << 20;
  if (auto r = int_option(*a, "repetitions", 1, 1000, err, bad)) o.bw.repetitions = *r;
  if (bad) return k_exit_usage;
  if (auto p = a->value("path")) {
    bool found = false;
    for (auto path : {bench::DotPath::portable, bench::DotPath::avx2, bench::DotPath::avx_vnni, bench::DotPath::neon_dotprod}) {
      if (*p == bench::dot_path_name(path)) {
        o.probe_options.path = path;
        found = true;
      }
    }
    if (!found) {
      err << "fleet-agent bench: --path must be portable, avx2, avx-vnni or neon-dotprod, got '" << *p << "'\n";
      return k_exit_usage;
    }
  }
  if (auto l = a->value("layout")) {
    auto layout = bench::parse_layout(*l);
    if (!layout) {
      err << "fleet-agent bench: --layout must be rows, q4_0_4x4, q4_0_4x8 or q4_0_8x8, got '" << *l << "'\n";
      return k_exit_usage;
    }
    if (*layout != bench::Layout::rows && !bench::gemv_fn(*layout, o.probe_options.path)) {
      err << "fleet-agent bench: the " << *l << " layout has no " << bench::dot_path_name(o.probe_options.path)
          << " kernel on this CPU (8x8 runs on avx2, avx-vnni and portable; 4x4 and 4x8 on neon-dotprod and portable)\n";
      return k_exit_usage;
    }
    o.probe_options.layout = *layout;
  } else if (o.probe_options.layout != bench::Layout::rows &&
             !bench::gemv_fn(o.probe_options.layout, o.probe_options.path)) {
    o.probe_options.layout = bench::Layout::rows;  // a --path whose instructions the layout's kernel does not use
  }
  if (auto h = a->value("sync")) {
    auto sync = bench::parse_sync(*h);
    if (!sync) {
      err << "fleet-agent bench: --sync must be " << (bench::k_have_gomp ? "gomp or spin" : "spin (this agent has no OpenMP)")
          << ", got '" << *h << "'\n";
      return k_exit_usage;
    }
    o.probe_options.sync = *sync;
  }
  if (auto m = a->value("model")) o.model = std::filesystem::path(*m);
  o.shape = a->value("model-shape");
  o.bandwidth = !a->flag("no-bandwidth");
  o.probe = !a->flag("no-probe");
  if (a->flag("hugepage") && a->flag("no-hugepage")) {
    err << "fleet-agent bench: give --hugepage or --no-hugepage, not both\n";
    return k_exit_usage;
  }
  if (a->flag("hugepage")) o.probe_options.huge = bench::Huge::on;
  if (a->flag("no-hugepage")) o.probe_options.huge = bench::Huge::off;
  if (auto l = a->value("llama-bench")) o.llama_bench = *l;
  const bool json = a->flag("json");
  auto r = bench::run_bench(o, [&](const std::string& line) { err << "bench: " << line << "\n"; });
  if (!r) {
    err << "fleet-agent bench: " << r.error().message << "\n";
    return r.error().code == Errc::invalid_input || r.error().code == Errc::parse || r.error().code == Errc::not_found
               ? k_exit_usage
               : k_exit_check_failed;
  }
  out << (json ? bench::bench_json(*r).dump(2) + "\n" : bench::bench_table(*r));
  return k_exit_ok;
}

}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty() || args[0] == "--help" || args[0] == "-h" || args[0] == "help") {
    (args.empty() ? err : out) << k_usage;
    return args.empty() ? k_exit_usage : k_exit_ok;
  }
  std::vector<std::string> rest(args.begin() + 1, args.end());
  if (args[0] == "verify") return verify(rest, out, err);
  for (const char* cmd : {"install", "tryboot", "boot-check", "rollback", "status"}) {
    if (args[0] == cmd) return lifecycle_command(cmd, rest, out, err);
  }
  if (args[0] == "send-reports") return send_reports(rest, out, err);
  if (args[0] == "setup") return setup(rest, out, err);
  if (args[0] == "bench") return bench_command(rest, out, err);
  if (args[0] == "units") return units_command(rest, out, err);
  if (args[0] == "version" || args[0] == "--version") {
    out << "fleet-agent " << FLEET_VERSION << " (commit " << build::k_git_commit << ")\n";
    return k_exit_ok;
  }
  err << "fleet-agent: unknown command '" << args[0] << "'\n\n" << k_usage;
  return k_exit_usage;
}

}  // namespace fleet::agent::cli
