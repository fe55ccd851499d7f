#include "controller/cli/cli.hpp"

#include <signal.h>
#include <unistd.h>

#include <array>
#include <cstdlib>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "common/args.hpp"
#include "common/bundle.hpp"
#include "common/signing.hpp"
#include "common/fs.hpp"
#include "common/kconfig.hpp"
#include "controller/cli/bundle_cmd.hpp"
#include "controller/cli/model_cmd.hpp"
#include "controller/cli/progress.hpp"
#include "controller/inventory/inventory.hpp"
#include "controller/web/server.hpp"
#include "controller/rollout/rollout.hpp"
#include "controller/status/status_service.hpp"
#include "controller/tls/authority.hpp"
#include "controller/tls/secret.hpp"
#include "common/rpc/rpc.hpp"
#include "proto/codec.hpp"
#include "proto/fleet.grpc.pb.h"
#include "controller/store/store.hpp"
#include "controller/kernel/build.hpp"
#include "controller/kernel/config_check.hpp"
#include "controller/kernel/profile.hpp"

#include "common/build_info.hpp"

#ifndef FLEET_VERSION
#define FLEET_VERSION "0.0.0"
#endif
#ifndef FLEET_SOURCE_DIR
#define FLEET_SOURCE_DIR "."
#endif

namespace fleet::controller::cli {
namespace {

constexpr int k_exit_ok = 0;
constexpr int k_exit_failed = 1;
constexpr int k_exit_usage = 2;

const std::string k_usage =
    "usage: fleetctl COMMAND [OPTIONS]\n"
    "\n"
    "Builds a tuned kernel for Raspberry Pi 5 inference boards and rolls it out.\n"
    "\n"
    "commands:\n"
    "  kernel build          cross-build a kernel profile into a bundle\n"
    "  kernel check-config   check a .config against a profile\n"
    "  kernel profiles       list the kernel profiles\n"
    "  kernel diff           how two profiles' final .configs differ, and why\n"
    "  bundle keygen         make an Ed25519 key pair for signing bundles\n"
    "  bundle sign           sign a bundle's manifest (boards that trust the key install it)\n"
    "  bundle verify         check a bundle's files and who signed it\n"
    "  inventory check       load an inventory and report its errors\n"
    "  inventory list        list the boards an inventory (and --limit) selects\n"
    "  rollout               take a kernel bundle across the boards, in waves\n"
    "  rollback              return boards to their previous kernel\n"
    "  model push            put a model file on boards, peer to peer (BitTorrent over TLS)\n"
    "  model list            which boards hold which models\n"
    "  status                boards and rollouts: kernel, outcome, verification\n"
    "  serve                 the status service (gRPC), the web dashboard and /metrics (--http)\n"
    "  version               print the version\n"
    "\n"
    "Run 'fleetctl COMMAND --help' for a command's options.\n"
    "Environment: FLEETCTL_KERNEL_DIR (profiles and fragments), FLEETCTL_CACHE (build cache).\n";

}  // namespace

std::optional<std::filesystem::path> installed_prefix() {
  std::error_code ec;
  const auto exe = std::filesystem::read_symlink("/proc/self/exe", ec);
  if (ec) return std::nullopt;
  const auto prefix = exe.parent_path().parent_path();
  if (!std::filesystem::is_directory(prefix / "share/fleetctl/kernel/profiles", ec)) return std::nullopt;
  return prefix;
}

namespace {

// Where the package put the profiles (/usr/share/fleetctl/kernel beside /usr/bin/fleetctl),
// else the source tree fleetctl was built from.
std::filesystem::path kernel_dir(const args::Parsed& a) {
  if (auto d = a.value("kernel-dir")) return *d;
  if (const char* e = std::getenv("FLEETCTL_KERNEL_DIR"); e && *e) return e;
  if (auto prefix = installed_prefix()) return *prefix / "share/fleetctl/kernel";
  return std::filesystem::path(FLEET_SOURCE_DIR) / "kernel";
}

// Parses a subcommand's options; prints help or a usage error. nullopt: return `code`.
std::optional<args::Parsed> parse_or_help(const std::vector<std::string>& argv, std::span<const args::Option> options,
                                          const args::Usage& usage, std::ostream& out, std::ostream& err, int& code) {
  return args::parse_command(argv, options, usage, out, err, code);
}

const args::Option k_opt_kernel_dir{"kernel-dir", args::Takes::value, "DIR",
                                    "profiles and fragments (default: the kernel/ folder of the source tree)"};
const args::Option k_opt_json{"json", args::Takes::nothing, "", "print JSON for programs instead of text"};
const args::Option k_opt_help{"help", args::Takes::nothing, "", "show this help"};

// --config-only's report: every requested symbol with the value the final .config gave it.
void print_config_report(const kernel::Profile& profile, const kernel::BuildResult& r, bool json, std::ostream& out) {
  if (json) {
    nlohmann::json symbols = nlohmann::json::array();
    for (const auto& c : r.config.symbols) {
      symbols.push_back({{"symbol", c.wanted.symbol}, {"wanted", c.wanted.value}, {"actual", c.actual},
                         {"origin", c.wanted.origin}, {"ok", c.ok}, {"optional_missing", c.optional_missing}});
    }
    out << nlohmann::json{{"profile", profile.name}, {"config", r.config_file.string()}, {"ok", r.config.ok()},
                          {"symbols", symbols}, {"contract_conflicts", r.config.contract_conflicts},
                          {"seconds", r.seconds}, {"notes", r.notes}}
               .dump()
        << "\n";
    return;
  }
  int ok = 0;
  for (const auto& c : r.config.symbols) {
    const char* mark = c.ok ? "ok  " : c.optional_missing ? "note" : "FAIL";
    out << "  " << mark << " CONFIG_" << c.wanted.symbol << "=" << c.wanted.value;
    if (!c.ok) out << " (final .config: " << c.actual << ")";
    out << "   " << c.wanted.origin << "\n";
    ok += c.ok ? 1 : 0;
  }
  out << "config " << r.config_file.string() << ": " << ok << " of " << r.config.symbols.size()
      << " requested symbols as asked; the contract (page size, THP, HZ, tick, NUMA, IKCONFIG) "
      << (r.config.contract_conflicts.empty() ? "holds" : "does not hold") << "; " << static_cast<int>(r.seconds + 0.5)
      << " s\n";
}

int kernel_build(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"profile", args::Takes::value, "NAME", "kernel profile: a name in kernel/profiles or a .yaml path (required)"},
      args::Option{"source", args::Takes::value, "DIR",
                   "build from this kernel tree (a clone of the profile's git source; default: $FLEET_RPI_SOURCE for "
                   "profiles that build from git)"},
      args::Option{"out", args::Takes::value, "DIR", "where the bundle goes (default: build/bundles/PROFILE)"},
      args::Option{"config-only", args::Takes::nothing, "",
                   "stop after the merged, checked .config: print every check, write OUT.config (seconds)"},
      args::Option{"jobs", args::Takes::value, "N", "parallel compile jobs (default: all cores)"},
      args::Option{"cache", args::Takes::value, "DIR", "cache for sources, build trees and bundles (default: ~/.cache/fleetctl)"},
      args::Option{"sign-key", args::Takes::value, "FILE", "sign the bundle with this private key (fleetctl bundle sign)"},
      k_opt_kernel_dir, k_opt_json, k_opt_help};
  const args::Usage usage{
      "fleetctl", "fleetctl kernel build --profile NAME [--source DIR] [--out DIR] [--jobs N] [--config-only] [--sign-key FILE] [--json]",
      "Cross-compiles the profile's kernel for aarch64 with ccache, merges the profile's config\n"
      "fragments with the kernel's merge_config.sh, runs olddefconfig and checks every requested\n"
      "symbol in the final .config (a dropped option fails the build, naming its unmet\n"
      "dependencies). The bundle holds the image, dtbs and overlays, modules, the .config, the\n"
      "contract and a manifest with every file's sha256; build.log beside it has the full log.\n"
      "The same inputs (source, profile, fragments, toolchain) reuse the previous bundle in seconds.\n"
      "--config-only stops after the check and prints it, for each requested symbol. Profiles of one\n"
      "source tree and base config (rpi5 and rpi5-qemu) share a build tree, so switching between\n"
      "them recompiles only what the differing symbols touch."};
  int code = 0;
  auto a = parse_or_help(argv, options, usage, out, err, code);
  if (!a) return code;
  auto name = a->value("profile");
  if (!name) {
    err << "fleetctl kernel build: --profile NAME is required (fleetctl kernel profiles lists them)\n";
    return k_exit_usage;
  }
  auto profile = kernel::load_profile(*name, kernel_dir(*a));
  if (!profile) {
    err << "fleetctl kernel build: " << profile.error().message << "\n";
    return k_exit_usage;
  }
  kernel::BuildOptions opt;
  opt.kernel_dir = kernel_dir(*a);
  if (auto s = a->value("source")) {
    opt.source_dir = *s;
  } else if (const char* env = std::getenv("FLEET_RPI_SOURCE"); env && *env && !profile->source.git_url.empty()) {
    opt.source_dir = env;  // the Raspberry Pi tree, named once for every command and test
  }
  if (a->flag("config-only")) {
    if (a->value("sign-key")) {
      err << "fleetctl kernel build: --config-only makes no bundle, so there is nothing for --sign-key to sign\n";
      return k_exit_usage;
    }
    opt.stop = kernel::BuildOptions::Stop::config;
  }
  opt.out_dir = a->value("out").value_or("build/bundles/" + profile->name);
  opt.cache_dir = a->value("cache") ? std::filesystem::path(*a->value("cache")) : kernel::default_cache_dir();
  opt.jobs = static_cast<int>(std::max(1u, std::thread::hardware_concurrency()));
  if (auto j = a->value("jobs")) {
    char* end = nullptr;
    long n = std::strtol(j->c_str(), &end, 10);
    if (j->empty() || *end != '\0' || n < 1 || n > 1024) {
      err << "fleetctl kernel build: --jobs must be a number from 1 to 1024, not '" << *j << "'\n";
      return k_exit_usage;
    }
    opt.jobs = static_cast<int>(n);
  }
  // The signing key is read and checked before a build that can take minutes.
  std::string sign_pem;
  if (auto k = a->value("sign-key")) {
    auto pem = fs::read_file(*k);
    auto id = pem ? signing::private_key_id(*pem, *k) : std::unexpected(pem.error());
    if (!id) {
      err << "fleetctl kernel build: --sign-key: " << id.error().message << "\n";
      return k_exit_usage;
    }
    sign_pem = *pem;
  }
  bool json = a->flag("json");
  // With --json, stdout carries only the result; progress goes to stderr.
  std::ostream& progress_stream = json ? err : out;
  bool real_stream = json ? (&err == &std::cerr) : (&out == &std::cout);
  bool tty = real_stream && ::isatty(json ? STDERR_FILENO : STDOUT_FILENO) == 1;
  ConsoleProgress progress(progress_stream, tty);
  progress.step("kernel profile " + profile->name + ": " + profile->description);
  auto result = kernel::build(*profile, opt, progress);
  if (!result) {
    progress.step("failed");
    err << "fleetctl kernel build: " << result.error().message << "\n";
    return result.error().code == Errc::invalid_input ? k_exit_usage : k_exit_failed;
  }
  if (opt.stop == kernel::BuildOptions::Stop::config) {
    print_config_report(*profile, *result, json, out);
    return result->config.ok() ? k_exit_ok : k_exit_failed;
  }
  std::string signer;
  if (!sign_pem.empty()) {
    auto id = bundle::sign(result->bundle_dir, sign_pem, *a->value("sign-key"));
    if (!id) {
      err << "fleetctl kernel build: signing: " << id.error().message << "\n";
      return k_exit_failed;
    }
    signer = *id;
  }
  if (json) {
    nlohmann::json j = {{"profile", profile->name},
                        {"signed_by", signer.empty() ? nlohmann::json() : nlohmann::json(signer)},
                        {"bundle", result->bundle_dir.string()},
                        {"kernel_release", result->manifest.kernel_release},
                        {"build_key", result->manifest.build_key},
                        {"how", kernel::how_name(result->how)},
                        {"seconds", result->seconds},
                        {"files", result->manifest.files.size()},
                        {"notes", result->notes}};
    out << j.dump() << "\n";
  } else {
    const char* how = result->how == kernel::How::built        ? "built"
                      : result->how == kernel::How::from_cache ? "copied from the cache (same inputs)"
                                                               : "already up to date (same inputs)";
    progress.step("done");
    out << "bundle " << result->bundle_dir.string() << ": kernel " << result->manifest.kernel_release << ", "
        << result->manifest.files.size() << " files, " << how << " in " << static_cast<int>(result->seconds + 0.5)
        << " s" << (signer.empty() ? "" : ", signed by key " + signer) << "\n";
  }
  return k_exit_ok;
}

// One side of `kernel diff`: a .config file as it is, or a profile configured (--config-only).
struct DiffSide {
  std::string name;
  std::map<std::string, std::string> config;
  std::vector<kernel::Requirement> requested;  // empty for a plain .config
  std::optional<std::filesystem::path> source;
};

Result<DiffSide> diff_side(const std::string& what, const args::Parsed& a, const std::filesystem::path& work) {
  DiffSide side{what, {}, {}, std::nullopt};
  std::error_code ec;
  if (!what.ends_with(".yaml") && std::filesystem::is_regular_file(what, ec)) {
    side.config = kconfig::to_map(kconfig::parse(FLEET_TRY(fs::read_file(what))));
    return side;
  }
  auto profile = FLEET_TRY(kernel::load_profile(what, kernel_dir(a)));
  kernel::BuildOptions opt;
  opt.kernel_dir = kernel_dir(a);
  if (auto s = a.value("source")) opt.source_dir = *s;
  else if (const char* env = std::getenv("FLEET_RPI_SOURCE"); env && *env && !profile.source.git_url.empty()) opt.source_dir = env;
  opt.out_dir = work / profile.name;
  opt.cache_dir = a.value("cache") ? std::filesystem::path(*a.value("cache")) : kernel::default_cache_dir();
  opt.stop = kernel::BuildOptions::Stop::config;
  struct Quiet : kernel::Progress {
    void step(std::string_view) override {}
    void compile(std::string_view, int, int) override {}
    void note(std::string_view) override {}
  } quiet;
  auto r = FLEET_TRY(kernel::build(profile, opt, quiet));
  side.config = kconfig::to_map(kconfig::parse(FLEET_TRY(fs::read_file(r.config_file))));
  side.requested = kernel::requirements(FLEET_TRY(kernel::fragment_texts(profile)));
  side.source = opt.source_dir;
  return side;
}

int kernel_diff(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"source", args::Takes::value, "DIR",
                   "the kernel tree (profiles from git: default $FLEET_RPI_SOURCE); its Kconfig explains each change"},
      args::Option{"cache", args::Takes::value, "DIR", "fleetctl's cache (default: ~/.cache/fleetctl)"},
      k_opt_kernel_dir, k_opt_json, k_opt_help};
  const args::Usage usage{
      "fleetctl", "fleetctl kernel diff A B [--source DIR] [--json]",
      "Shows how the final .config of B differs from A's, and why. A and B are profiles (each\n"
      "configured as --config-only does, in seconds) or .config files. Each difference is\n"
      "  requested    a fragment of A or B asks for that value (the file and line),\n"
      "  follows      Kconfig ties it to another difference (selected by, depends on, default),\n"
      "  unexplained  nothing above accounts for it.\n"
      "and every symbol A's fragments ask for is compared. `fleetctl kernel diff rpi5 rpi5-qemu`\n"
      "shows that the test profile changes only what QEMU's virt machine needs.\n"
      "Exit status 0 when nothing is unexplained and A's requested symbols are unchanged, else 1.",
      2};
  int code = 0;
  auto a = parse_or_help(argv, options, usage, out, err, code);
  if (!a) return code;
  if (a->positional.size() != 2) {
    err << "fleetctl kernel diff: name two profiles or .config files (fleetctl kernel diff rpi5 rpi5-qemu)\n";
    return k_exit_usage;
  }
  auto work = fs::make_temp_dir("fleetctl-diff");
  if (!work) {
    err << "fleetctl kernel diff: " << work.error().message << "\n";
    return k_exit_failed;
  }
  struct Cleanup {
    std::filesystem::path p;
    ~Cleanup() {
      std::error_code ec;
      std::filesystem::remove_all(p, ec);
    }
  } cleanup{*work};
  auto before = diff_side(a->positional[0], *a, *work);
  auto after = before ? diff_side(a->positional[1], *a, *work) : std::unexpected(before.error());
  if (!before || !after) {
    err << "fleetctl kernel diff: " << (before ? after : before).error().message << "\n";
    const Errc c = (before ? after : before).error().code;
    return c == Errc::invalid_input || c == Errc::not_found ? k_exit_usage : k_exit_failed;
  }
  kernel::KconfigIndex index;
  if (auto src = after->source ? after->source : before->source) index = kernel::index_tree(*src);
  auto changes = kernel::diff_configs(before->config, after->config, before->requested, after->requested, index);
  auto lost = kernel::requested_changed(before->requested, before->config, after->config);
  std::map<kernel::ConfigChange::Why, int> count;
  for (const auto& c : changes) ++count[c.why];
  const int unexplained = count[kernel::ConfigChange::Why::unexplained];
  if (a->flag("json")) {
    nlohmann::json j = {{"from", before->name}, {"to", after->name}, {"changes", nlohmann::json::array()},
                        {"requested", count[kernel::ConfigChange::Why::requested]},
                        {"follows", count[kernel::ConfigChange::Why::follows]}, {"unexplained", unexplained},
                        {"from_requested_checked", before->requested.size()}, {"from_requested_changed", lost}};
    for (const auto& c : changes) {
      j["changes"].push_back({{"symbol", c.symbol}, {"before", c.before}, {"after", c.after},
                              {"why", kernel::why_name(c.why)}, {"because", c.because}});
    }
    out << j.dump() << "\n";
  } else {
    out << before->name << " -> " << after->name << ": " << changes.size() << " symbols differ ("
        << count[kernel::ConfigChange::Why::requested] << " requested, " << count[kernel::ConfigChange::Why::follows]
        << " follow from them, " << unexplained << " unexplained)\n";
    for (auto why : {kernel::ConfigChange::Why::requested, kernel::ConfigChange::Why::follows,
                     kernel::ConfigChange::Why::unexplained}) {
      for (const auto& c : changes) {
        if (c.why != why) continue;
        char line[256];
        std::snprintf(line, sizeof line, "  %-11s CONFIG_%-32s %s -> %s", kernel::why_name(c.why), c.symbol.c_str(),
                      c.before.c_str(), c.after.c_str());
        out << line << (c.because.empty() ? "" : "   " + c.because) << "\n";
      }
    }
    if (before->requested.empty()) {
      out << before->name << " is a .config file: no requested symbols to compare\n";
    } else if (lost.empty()) {
      out << "all " << before->requested.size() << " symbols " << before->name << "'s fragments ask for are the same in "
          << after->name << "\n";
    } else {
      for (const auto& s : lost) out << "CHANGED: CONFIG_" << s << ", which " << before->name << " asks for\n";
    }
  }
  return unexplained == 0 && lost.empty() ? k_exit_ok : k_exit_failed;
}

int kernel_check_config(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"profile", args::Takes::value, "NAME", "kernel profile (required)"},
      args::Option{"config", args::Takes::value, "FILE", "the .config to check, e.g. from /proc/config.gz (required)"},
      args::Option{"source", args::Takes::value, "DIR", "kernel tree whose Kconfig explains dropped options"},
      k_opt_kernel_dir, k_opt_json, k_opt_help};
  const args::Usage usage{"fleetctl", "fleetctl kernel check-config --profile NAME --config FILE [--source DIR] [--json]",
                    "Checks that a kernel .config has every symbol the profile's fragments ask for, and\n"
                    "that it delivers the profile's contract. Exit status 1 when something differs."};
  int code = 0;
  auto a = parse_or_help(argv, options, usage, out, err, code);
  if (!a) return code;
  if (!a->value("profile") || !a->value("config")) {
    err << "fleetctl kernel check-config: --profile NAME and --config FILE are required\n";
    return k_exit_usage;
  }
  auto profile = kernel::load_profile(*a->value("profile"), kernel_dir(*a));
  if (!profile) {
    err << "fleetctl kernel check-config: " << profile.error().message << "\n";
    return k_exit_usage;
  }
  auto text = fs::read_file(*a->value("config"));
  if (!text) {
    err << "fleetctl kernel check-config: " << text.error().message << "\n";
    return k_exit_usage;
  }
  auto fragments = kernel::fragment_texts(*profile);
  if (!fragments) {
    err << "fleetctl kernel check-config: " << fragments.error().message << "\n";
    return k_exit_usage;
  }
  auto config = kconfig::to_map(kconfig::parse(*text));
  auto wanted = kernel::requirements(*fragments);
  kernel::KconfigIndex index;
  if (auto s = a->value("source")) index = kernel::index_tree(*s);
  std::set<std::string> optional(profile->optional_symbols.begin(), profile->optional_symbols.end());
  auto findings = kernel::check_config(wanted, config, optional, index);
  auto conflicts = kernel::contract_conflicts(profile->contract, config);
  bool ok = conflicts.empty() &&
            std::all_of(findings.begin(), findings.end(), [](const auto& f) { return f.optional_missing; });
  if (a->flag("json")) {
    nlohmann::json j = {{"ok", ok}, {"checked", wanted.size()}, {"findings", nlohmann::json::array()},
                        {"contract_conflicts", conflicts}};
    for (const auto& f : findings) {
      j["findings"].push_back({{"symbol", f.wanted.symbol}, {"wanted", f.wanted.value}, {"actual", f.actual},
                               {"origin", f.wanted.origin}, {"optional", f.optional_missing},
                               {"explanation", f.explanation}});
    }
    out << j.dump() << "\n";
  } else {
    for (const auto& f : findings) out << (f.optional_missing ? "note: " : "MISMATCH: ") << f.explanation << "\n";
    for (const auto& c : conflicts) out << "CONTRACT: " << c << "\n";
    out << (ok ? "ok: " : "FAILED: ") << wanted.size() << " requested symbols checked against " << *a->value("config")
        << "\n";
  }
  return ok ? k_exit_ok : k_exit_failed;
}

int kernel_profiles(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {k_opt_kernel_dir, k_opt_json, k_opt_help};
  int code = 0;
  auto a = parse_or_help(argv, options, {"fleetctl", "fleetctl kernel profiles [--json]", "Lists the kernel profiles."}, out, err, code);
  if (!a) return code;
  nlohmann::json list = nlohmann::json::array();
  int status = k_exit_ok;
  for (const auto& name : kernel::list_profiles(kernel_dir(*a))) {
    auto p = kernel::load_profile(name, kernel_dir(*a));
    if (!p) {
      err << "fleetctl: " << p.error().message << "\n";
      status = k_exit_failed;
      continue;
    }
    std::string source = p->source.tarball.empty() ? p->source.git_url + " @ " + p->source.git_ref : p->source.tarball.string();
    if (a->flag("json")) {
      list.push_back({{"name", p->name}, {"description", p->description}, {"source", source},
                      {"base", p->base_target}, {"thp_mode", p->thp_mode}, {"localversion", p->localversion}});
    } else {
      out << p->name << "\t" << p->description << "\n\tsource: " << source << "; base: " << p->base_target
          << "; thp: " << p->thp_mode << "\n";
    }
  }
  if (a->flag("json")) out << list.dump() << "\n";
  return status;
}


int inventory_cmd(const std::string& sub, const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"inventory", args::Takes::value, "PATH", "the inventory file or directory (required; -i in Ansible)"},
      args::Option{"limit", args::Takes::value, "PATTERN", "host pattern: group, host, glob, a:b, a:&b, a:!b"},
      k_opt_json, k_opt_help};
  int code = 0;
  auto a = parse_or_help(argv, options,
                         {"fleetctl", "fleetctl inventory " + sub + " --inventory PATH [--limit PATTERN] [--json]",
                          "Loads an Ansible inventory: YAML or INI (the 'hosts' format: [group], [group:vars],\n"
                          "[group:children], inline host variables), host ranges (pi-[01:32]), or a directory of\n"
                          "them with group_vars/ and host_vars/, as Ansible loads it. 'check' reports the first error with its file,\n"
                          "line and column; 'list' prints each selected board with its address, port, user and groups."},
                         out, err, code);
  if (!a) return code;
  auto file = a->value("inventory");
  if (!file) {
    err << "fleetctl inventory " << sub << ": --inventory FILE is required\n";
    return k_exit_usage;
  }
  auto inv = inventory::load_inventory(*file);
  if (!inv) {
    err << "fleetctl inventory: " << inv.error().message << "\n";
    return k_exit_failed;
  }
  auto hosts = inventory::select(*inv, a->value("limit").value_or("all"));
  if (!hosts) {
    err << "fleetctl inventory: --limit: " << hosts.error().message << "\n";
    return k_exit_usage;
  }
  if (a->flag("json")) {
    nlohmann::json list = nlohmann::json::array();
    for (const auto* h : *hosts) {
      list.push_back({{"name", h->name}, {"address", h->address}, {"port", h->port}, {"user", h->user},
                      {"key", h->key}, {"groups", h->groups}, {"vars", h->vars}});
    }
    out << (sub == "check" ? nlohmann::json{{"ok", true}, {"hosts", hosts->size()}, {"groups", inv->groups.size()}}
                           : list)
               .dump()
        << "\n";
    return k_exit_ok;
  }
  if (sub == "check") {
    out << *file << ": ok, " << hosts->size() << " boards in " << inv->groups.size() << " groups\n";
    return k_exit_ok;
  }
  for (const auto* h : *hosts) {
    std::string groups;
    for (const auto& g : h->groups) groups += (groups.empty() ? "" : ",") + g;
    out << h->name << "\t" << h->user << "@" << h->address << ":" << h->port << "\t" << groups << "\n";
  }
  return k_exit_ok;
}


std::filesystem::path default_state_db() {
  if (const char* e = std::getenv("FLEETCTL_STATE"); e && *e) return e;
  if (const char* x = std::getenv("XDG_STATE_HOME"); x && *x) return std::filesystem::path(x) / "fleetctl/fleet.db";
  if (const char* h = std::getenv("HOME"); h && *h) return std::filesystem::path(h) / ".local/state/fleetctl/fleet.db";
  return "fleet.db";
}

const args::Option k_opt_state{"state", args::Takes::value, "FILE",
                               "the state database (default $FLEETCTL_STATE or ~/.local/state/fleetctl/fleet.db)"};

// --forks: boards worked on at once (default 5); 0 when it is not a whole number.
int forks_of(const args::Parsed& a) {
  auto v = a.value("forks").value_or("5");
  try {
    size_t used = 0;
    int n = std::stoi(v, &used);
    return used == v.size() ? n : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

int rollout_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"bundle", args::Takes::value, "DIR", "the kernel bundle (required)"},
      args::Option{"inventory", args::Takes::value, "PATH", "the inventory: a YAML or INI file, or a directory (required)"},
      args::Option{"limit", args::Takes::value, "PATTERN", "only these boards (host pattern; default all)"},
      args::Option{"serial", args::Takes::value, "LIST", "wave sizes: counts and percentages, the last repeats (default 1,100%)"},
      args::Option{"max-fail", args::Takes::value, "N|P%", "failures a wave may have before the rest stop (default 0%)"},
      args::Option{"forks", args::Takes::value, "N",
                   "boards in SSH work at once (default 5); a board that is rebooting or measuring holds none"},
      args::Option{"no-prestage", args::Takes::nothing, "",
                   "do not upload the next wave's bundle while a wave is on trial"},
      args::Option{"dry-run", args::Takes::nothing, "", "show per board what would change; change nothing"},
      args::Option{"resume", args::Takes::value, "ID", "continue a rollout a killed controller left"},
      args::Option{"agent", args::Takes::value, "FILE", "the aarch64 fleet-agent to push (default build/aarch64/...)"},
      args::Option{"listen", args::Takes::value, "ADDR",
                   "where the report service listens (default 0.0.0.0:50051: every interface, as boards on the "
                   "LAN must reach it; TLS and per-board tokens guard it)"},
      args::Option{"report-address", args::Takes::value, "HOST:PORT", "what boards dial to report (default: this host)"},
      args::Option{"accept-new-host-keys", args::Takes::nothing, "", "add unknown boards to known_hosts (a changed key is still refused)"},
      args::Option{"known-hosts", args::Takes::value, "FILE", "known_hosts file (default ~/.ssh/known_hosts)"},
      args::Option{"trust-key", args::Takes::value, "FILE",
                   "the bundle must be signed by this public key; boards are set up to trust it and then refuse "
                   "bundles without its signature"},
      k_opt_state, k_opt_help};
  int code = 0;
  auto a = parse_or_help(
      argv, options,
      {"fleetctl",
       "fleetctl rollout --bundle DIR --inventory FILE [--limit P] [--serial 1,5,25%] [--max-fail 10%] [--forks N] "
       "[--no-prestage] [--dry-run] [--resume ID]",
       "Takes the bundle across the selected boards in waves (the first is the canary). Per board: push the\n"
       "bundle (resumable, its sha256 checked on the board), push the agent if missing or different, install,\n"
       "reboot once into it (tryboot), confirm the reboot by a new boot_id, and wait for the agent's verdict:\n"
       "committed, or rolled back by the board itself. When a wave's failures exceed --max-fail the remaining\n"
       "waves do not start. Boards already on the bundle are skipped. State is kept in SQLite: --resume ID\n"
       "continues after a kill.\n"
       "--forks bounds the boards in SSH work; a board that is rebooting, booting or measuring is watched\n"
       "without holding one. While a wave is on trial, the next wave's bundle is uploaded ahead (nothing is\n"
       "installed before the gate passes), unless --no-prestage. Boards sharing the inventory variable\n"
       "fleet_group (one model served by several boards) are never more than fleet_group_max_down (default 1)\n"
       "down at once; --dry-run shows the order.\n"
       "--trust-key KEY.pub: the bundle must carry KEY's signature (fleetctl bundle sign); each board is set\n"
       "up to trust KEY and from then on installs only bundles signed by a key it trusts.\n"
       "Reports come over TLS only: each board is set up with the controller's CA (tls/ca.pem beside the\n"
       "state, made on first use) and a token for itself and this rollout; the line 'reports: listening on'\n"
       "says where the service listens and what boards dial."},
      out, err, code);
  if (!a) return code;
  rollout::RolloutOptions o;
  if (!a->value("bundle") || !a->value("inventory")) {
    err << "fleetctl rollout: --bundle DIR and --inventory FILE are required\n";
    return k_exit_usage;
  }
  o.bundle = *a->value("bundle");
  o.inventory = *a->value("inventory");
  o.limit = a->value("limit").value_or("all");
  o.serial = a->value("serial").value_or("1,100%");
  o.max_fail = a->value("max-fail").value_or("0%");
  o.forks = forks_of(*a);
  if (o.forks < 1) {
    err << "fleetctl rollout: --forks must be a number of boards, at least 1\n";
    return k_exit_usage;
  }
  o.dry_run = a->flag("dry-run");
  o.prestage = !a->flag("no-prestage");
  o.resume = a->value("resume");
  o.state_db = a->value("state") ? std::filesystem::path(*a->value("state")) : default_state_db();
  o.agent = a->value("agent").value_or(std::string(FLEET_SOURCE_DIR) + "/build/aarch64/node-agent/fleet-agent");
  o.listen = a->value("listen").value_or("0.0.0.0:50051");
  o.report_address = a->value("report-address").value_or("");
  o.host_keys = a->flag("accept-new-host-keys") ? ssh::HostKeys::accept_new : ssh::HostKeys::strict;
  if (auto k = a->value("known-hosts")) o.known_hosts = *k;
  if (auto k = a->value("trust-key")) o.trust_key = *k;
  o.work_dir = kernel::default_cache_dir() / "tars";
  o.live = &out == &std::cout && ::isatty(STDOUT_FILENO) == 1 && !std::getenv("CI");
  auto r = rollout::run_rollout(o, out);
  if (!r) {
    err << "fleetctl rollout: " << r.error().message << "\n";
    return r.error().code == Errc::invalid_input || r.error().code == Errc::not_found ? k_exit_usage : k_exit_failed;
  }
  return r->failed == 0 && r->state != vocab::RolloutState::stopped ? k_exit_ok : k_exit_failed;
}

int rollback_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      args::Option{"inventory", args::Takes::value, "PATH", "the inventory: a YAML or INI file, or a directory (required)"},
      args::Option{"rollout", args::Takes::value, "ID", "roll back the boards this rollout committed"},
      args::Option{"limit", args::Takes::value, "PATTERN", "or: roll back the boards this host pattern selects"},
      args::Option{"forks", args::Takes::value, "N", "boards worked on at once (default 5)"},
      args::Option{"accept-new-host-keys", args::Takes::nothing, "", "add unknown boards to known_hosts"},
      args::Option{"known-hosts", args::Takes::value, "FILE", "known_hosts file (default ~/.ssh/known_hosts)"},
      k_opt_state, k_opt_help};
  int code = 0;
  auto a = parse_or_help(argv, options,
                         {"fleetctl", "fleetctl rollback --inventory FILE (--rollout ID | --limit PATTERN)",
                          "Asks each board's agent to point config.txt back at its previous committed slot and\n"
                          "reboot; proves the reboot by a new boot_id and waits for the agent's ROLLED_BACK."},
                         out, err, code);
  if (!a) return code;
  if (!a->value("inventory") || (!a->value("rollout") && !a->value("limit"))) {
    err << "fleetctl rollback: --inventory FILE and one of --rollout ID or --limit PATTERN are required\n";
    return k_exit_usage;
  }
  rollout::RollbackOptions o;
  o.inventory = *a->value("inventory");
  o.rollout = a->value("rollout");
  o.limit = a->value("limit");
  o.forks = forks_of(*a);
  if (o.forks < 1) {
    err << "fleetctl rollback: --forks must be a number of boards, at least 1\n";
    return k_exit_usage;
  }
  o.state_db = a->value("state") ? std::filesystem::path(*a->value("state")) : default_state_db();
  o.host_keys = a->flag("accept-new-host-keys") ? ssh::HostKeys::accept_new : ssh::HostKeys::strict;
  if (auto k = a->value("known-hosts")) o.known_hosts = *k;
  auto r = rollout::run_rollback(o, out);
  if (!r) {
    err << "fleetctl rollback: " << r.error().message << "\n";
    return r.error().code == Errc::invalid_input ? k_exit_usage : k_exit_failed;
  }
  return r->failed == 0 ? k_exit_ok : k_exit_failed;
}

std::atomic<bool> g_stop{false};
void on_stop_signal(int) { g_stop = true; }

// "6.84 t/s 7b" for the status table: the probe's rate and shape, llama-bench's tg rate if it ran.
std::string throughput_cell(const fleet::v1::BoardStatus& b) {
  if (!b.has_throughput()) return "-";
  const auto& t = b.throughput();
  char buf[96];
  if (t.llama_tg_ts() > 0) {
    std::snprintf(buf, sizeof buf, "%.2f t/s llama-bench", t.llama_tg_ts());
  } else {
    std::snprintf(buf, sizeof buf, "%.2f t/s %s", t.tokens_per_s(), t.shape().c_str());
  }
  std::string spread;
  if (t.llama_tg_ts() <= 0 && t.tokens_timed() > 0) {
    // How steady one token's time was (interquartile / median) over how many tokens.
    char s2[48];
    std::snprintf(s2, sizeof s2, " ±%.0f%%", 100 * t.spread());
    spread = s2;
  }
  // The board's condition when it was measured, when it explains a low figure.
  std::string cell = buf + spread;
  // What the update changed: the trial kernel against the committed one, measured alike.
  if (auto change = controller::throughput_change_text(t); !change.empty()) cell += " (" + change + ")";
  if (t.has_undervoltage() && t.undervoltage()) cell += " UNDERVOLT";
  if (t.has_temperature_c() && t.temperature_c() >= 80.0) {
    std::snprintf(buf, sizeof buf, " HOT %.0fC", t.temperature_c());
    cell += buf;
  }
  return cell;
}

// What `fleetctl status` shows, from the state database or from a running `fleetctl serve`.
class StatusSource {
 public:
  virtual ~StatusSource() = default;
  virtual Result<fleet::v1::StatusSnapshot> read() = 0;
};

class DatabaseSource final : public StatusSource {
 public:
  explicit DatabaseSource(std::unique_ptr<store::Store> st) : st_(std::move(st)) {}
  Result<fleet::v1::StatusSnapshot> read() override {
    auto boards = st_->latest_boards();
    auto rollouts = st_->rollouts(10);
    if (!boards || !rollouts) return fail(Errc::io, "cannot read " + st_->file().string());
    fleet::v1::StatusSnapshot snap;
    for (const auto& b : *boards) *snap.add_boards() = controller::board_status(*st_, b);
    for (const auto& r : *rollouts) controller::fill_rollout(*st_, r, snap.add_rollouts(), false);
    return snap;
  }

 private:
  std::unique_ptr<store::Store> st_;
};

// The StatusService over TLS, checked against the controller's CA, with the service's token.
class ServiceSource final : public StatusSource {
 public:
  ServiceSource(std::string address, std::shared_ptr<grpc::Channel> channel, std::string token)
      : address_(std::move(address)), stub_(fleet::v1::StatusService::NewStub(channel)), token_(std::move(token)) {}
  Result<fleet::v1::StatusSnapshot> read() override {
    auto call = [&](auto method, const auto& request, auto& response) -> Result<void> {
      grpc::ClientContext ctx;
      ctx.AddMetadata(rpc::k_auth_key, std::string(rpc::k_bearer) + token_);
      ctx.set_deadline(std::chrono::system_clock::now() + std::chrono::seconds(10));
      grpc::Status st = ((*stub_).*method)(&ctx, request, &response);
      if (st.ok()) return {};
      const Errc code = st.error_code() == grpc::StatusCode::UNAUTHENTICATED ? Errc::auth_refused
                        : rpc::is_handshake_failure(st)                      ? Errc::mismatch
                                                                              : Errc::unreachable;
      return fail(code, "the status service at " + address_ + ": " + st.error_message());
    };
    fleet::v1::ListBoardsResponse boards;
    FLEET_TRY(call(&fleet::v1::StatusService::Stub::ListBoards, fleet::v1::ListBoardsRequest{}, boards));
    fleet::v1::ListRolloutsRequest req;
    req.set_limit(10);
    fleet::v1::ListRolloutsResponse rollouts;
    FLEET_TRY(call(&fleet::v1::StatusService::Stub::ListRollouts, req, rollouts));
    fleet::v1::StatusSnapshot snap;
    *snap.mutable_boards() = std::move(*boards.mutable_boards());
    *snap.mutable_rollouts() = std::move(*rollouts.mutable_rollouts());
    return snap;
  }

 private:
  std::string address_;
  std::unique_ptr<fleet::v1::StatusService::Stub> stub_;
  std::string token_;
};

// --server ADDR: the service's CA and token, from the state folder unless given.
Result<std::unique_ptr<StatusSource>> service_source(const args::Parsed& a, const std::filesystem::path& state_db) {
  const std::string address = *a.value("server");
  const std::filesystem::path ca_file =
      a.value("ca") ? std::filesystem::path(*a.value("ca")) : tls::authority_dir(state_db) / "ca.pem";
  const std::filesystem::path token_file =
      a.value("token-file") ? std::filesystem::path(*a.value("token-file")) : tls::status_token_file(state_db);
  auto ca_text = FLEET_TRY(with_context(fs::read_file(ca_file), "the controller's CA (--ca)"));
  auto ca = FLEET_TRY(tls::parse_ca_certificate(ca_text, ca_file.string()));
  FLEET_TRY(with_context(tls::check_private_file(token_file), "the status token (--token-file)"));
  std::string token = FLEET_TRY(fs::read_file(token_file));
  while (!token.empty() && (token.back() == '\n' || token.back() == '\r')) token.pop_back();
  auto channel = FLEET_TRY(rpc::controller_channel(address, ca.pem));
  return std::unique_ptr<StatusSource>(std::make_unique<ServiceSource>(address, channel, token));
}

int status_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      k_opt_state, k_opt_json,
      args::Option{"watch", args::Takes::nothing, "", "redraw every 2 s until interrupted"},
      args::Option{"count", args::Takes::value, "N", "with --watch: stop after N redraws"},
      args::Option{"server", args::Takes::value, "HOST:PORT",
                   "ask a running fleetctl serve instead of reading the state database (TLS and its token)"},
      args::Option{"ca", args::Takes::value, "FILE", "with --server: the controller's CA (default: tls/ca.pem beside the state)"},
      args::Option{"token-file", args::Takes::value, "FILE",
                   "with --server: the service's token (default: status.token beside the state)"},
      k_opt_help};
  int code = 0;
  auto a = parse_or_help(argv, options,
                         {"fleetctl", "fleetctl status [--state FILE] [--json] [--watch [--count N]] [--server HOST:PORT]",
                          "Per board: its kernel, the outcome of its last rollout and the verification its agent\n"
                          "reported. Per rollout: kernel, state, and why it stopped. With --server, the same from a\n"
                          "fleetctl serve (on this or another machine), over TLS checked against the controller's CA,\n"
                          "with the token whose file fleetctl serve names at start."},
                         out, err, code);
  if (!a) return code;
  auto path = a->value("state") ? std::filesystem::path(*a->value("state")) : default_state_db();
  std::unique_ptr<StatusSource> source;
  if (a->value("server")) {
    auto s = service_source(*a, path);
    if (!s) {
      err << "fleetctl status: " << s.error().message << "\n";
      return s.error().code == Errc::not_found || s.error().code == Errc::invalid_input ? k_exit_usage : k_exit_failed;
    }
    source = std::move(*s);
  } else {
    if (!std::filesystem::exists(path)) {
      err << "fleetctl status: no state database at " << path.string() << " (no rollout yet?)\n";
      return k_exit_usage;
    }
    auto st = store::Store::open(path);
    if (!st) {
      err << "fleetctl status: " << st.error().message << "\n";
      return k_exit_failed;
    }
    source = std::make_unique<DatabaseSource>(std::move(*st));
  }
  int count = 0;
  try {
    count = std::stoi(a->value("count").value_or("0"));
  } catch (const std::exception&) {
    err << "fleetctl status: --count must be a number\n";
    return k_exit_usage;
  }
  const bool watch = a->flag("watch");
  ::signal(SIGINT, on_stop_signal);
  ::signal(SIGTERM, on_stop_signal);
  for (int round = 0; !g_stop; ++round) {
    auto read = source->read();
    if (!read) {
      err << "fleetctl status: " << read.error().message << "\n";
      return k_exit_failed;
    }
    const auto& snap = *read;
    if (a->flag("json")) {
      // fleet.v1.StatusSnapshot through the one codec: the StatusService's own field names.
      auto text = wire::to_json(snap);
      if (!text) {
        err << "fleetctl status: " << text.error().message << "\n";
        return k_exit_failed;
      }
      out << *text << "\n";
    } else {
      if (watch && &out == &std::cout && ::isatty(STDOUT_FILENO)) out << "\033[H\033[2J";
      out << "BOARD         KERNEL                      OUTCOME       THROUGHPUT             VERIFICATION\n";
      std::vector<std::string> warnings;  // said in full under the table
      for (const auto& b : snap.boards()) {
        std::string verification;
        for (const auto& c : b.checks()) {
          const bool warned = !c.warning().empty();
          verification += c.property() + (!c.pass() ? " FAIL  " : warned ? " WARN  " : " ok  ");
          if (warned) warnings.push_back(b.board() + ": " + c.warning());
        }
        char line[512];
        std::snprintf(line, sizeof line, "%-13s %-27s %-13s %-22s %s\n", b.board().c_str(), b.kernel_release().c_str(),
                      (vocab::step_from_name(b.step()) == vocab::Step::done ? b.outcome() : b.step()).c_str(),
                      throughput_cell(b).c_str(),
                      verification.c_str());
        out << line;
      }
      for (const auto& w : warnings) out << "  warning: " << w << "\n";
      out << "\nROLLOUT             KERNEL                      SIGNED BY         STATE\n";
      for (const auto& r : snap.rollouts()) {
        char line[512];
        std::snprintf(line, sizeof line, "%-19s %-27s %-17s %s %s\n", r.id().c_str(), r.kernel_release().c_str(),
                      r.signed_by().empty() ? "-" : r.signed_by().c_str(), r.state().c_str(), r.message().c_str());
        out << line;
      }
    }
    out << std::flush;
    if (!watch || (count > 0 && round + 1 >= count)) break;
    for (int i = 0; i < 10 && !g_stop; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  }
  return k_exit_ok;
}

// True for an address only this machine can reach: 127.0.0.0/8, [::1], localhost.
bool is_loopback(const std::string& address) {
  const auto colon = address.rfind(':');
  std::string host = colon == std::string::npos ? address : address.substr(0, colon);
  if (host.starts_with("[") && host.ends_with("]")) host = host.substr(1, host.size() - 2);
  return host == "localhost" || host == "::1" || host.starts_with("127.");
}

int serve_cmd(const std::vector<std::string>& argv, std::ostream& out, std::ostream& err) {
  const std::array options = {
      k_opt_state,
      args::Option{"listen", args::Takes::value, "ADDR",
                   "where the StatusService listens (default 127.0.0.1:50052: this machine only)"},
      args::Option{"http", args::Takes::value, "ADDR",
                   "also serve the web dashboard and /metrics (Prometheus) there, e.g. 127.0.0.1:8080"},
      args::Option{"chart-js", args::Takes::value, "FILE",
                   "Chart.js for the board page's chart (default: Debian's libjs-chart.js, "
                   "/usr/share/javascript/chart.js/chart.min.js)"},
      k_opt_help};
  int code = 0;
  auto a = parse_or_help(argv, options,
                         {"fleetctl", "fleetctl serve [--listen ADDR] [--http ADDR] [--state FILE]",
                          "Serves the StatusService (proto/fleet.proto) for dashboards: boards, rollouts, and a\n"
                          "stream of board changes, read from the state database while rollouts write it.\n"
                          "TLS only, with a certificate from the controller's CA (tls/ca.pem beside the state,\n"
                          "made on first use), and every call needs the token in status.token beside the state\n"
                          "(mode 0600, made on first use) as \"authorization: Bearer TOKEN\"; fleetctl status\n"
                          "--server reads both. Listens on loopback unless --listen says otherwise.\n"
                          "With --http: the dashboard (the fleet, each rollout's waves live, each board's history\n"
                          "with a chart of tokens/s) and GET /metrics in Prometheus' text format, over plain HTTP.\n"
                          "The same token: a browser logs in with it once (a cookie), scripts and Prometheus send\n"
                          "\"Authorization: Bearer TOKEN\". Keep --http on loopback or behind a TLS proxy."},
                         out, err, code);
  if (!a) return code;
  auto path = a->value("state") ? std::filesystem::path(*a->value("state")) : default_state_db();
  const std::string listen = a->value("listen").value_or("127.0.0.1:50052");
  auto authority = tls::Authority::open_or_create(tls::authority_dir(path));
  if (!authority) {
    err << "fleetctl serve: " << authority.error().message << "\n";
    return k_exit_failed;
  }
  bool token_made = false;
  const auto token_file = tls::status_token_file(path);
  auto token = tls::read_or_create_token(token_file, &token_made);
  auto identity = token ? authority->issue_server() : Result<tls::ServerIdentity>(std::unexpected(token.error()));
  if (!identity) {
    err << "fleetctl serve: " << identity.error().message << "\n";
    return k_exit_failed;
  }
  auto server = controller::StatusServer::start({listen, *identity, *token}, path);
  if (!server) {
    err << "fleetctl serve: " << server.error().message << "\n";
    return k_exit_failed;
  }
  std::unique_ptr<web::HttpServer> http;
  if (auto addr = a->value("http")) {
    web::HttpOptions ho{*addr, *token, path};
    if (auto js = a->value("chart-js")) ho.chart_js = *js;
    auto h = web::HttpServer::start(ho);
    if (!h) {
      err << "fleetctl serve: " << h.error().message << "\n";
      return h.error().code == Errc::invalid_input ? k_exit_usage : k_exit_failed;
    }
    http = std::move(*h);
  }
  out << "status service on " << listen.substr(0, listen.rfind(':') + 1) << (*server)->port() << " over TLS ("
      << authority->certificate().subject << ", " << authority->certificate_file().string() << ")\n"
      << "token: " << token_file.string() << (token_made ? " (made now)" : "")
      << "; callers send \"authorization: Bearer TOKEN\" (fleetctl status --server reads it)\n"
      << "state: " << path.string() << "\n";
  if (!is_loopback(listen)) out << "note: --listen " << listen << " reaches beyond this machine; the token guards it\n";
  if (http) {
    const std::string addr = *a->value("http");
    out << "dashboard on http://" << addr.substr(0, addr.rfind(':') + 1) << http->port()
        << "/ (log in with the token), metrics on /metrics\n";
    if (!is_loopback(addr)) out << "note: --http " << addr << " is plain HTTP beyond this machine: the token crosses it in clear\n";
  }
  out << std::flush;
  ::signal(SIGINT, on_stop_signal);
  ::signal(SIGTERM, on_stop_signal);
  while (!g_stop) std::this_thread::sleep_for(std::chrono::milliseconds(200));
  if (http) http->stop();
  (*server)->stop();
  return k_exit_ok;
}
}  // namespace

int run(const std::vector<std::string>& args, std::ostream& out, std::ostream& err) {
  if (args.empty()) {
    err << k_usage;
    return k_exit_usage;
  }
  const std::string& cmd = args[0];
  if (cmd == "--help" || cmd == "-h" || cmd == "help") {
    out << k_usage;
    return k_exit_ok;
  }
  if (cmd == "version" || cmd == "--version") {
    out << "fleetctl " << FLEET_VERSION << " (commit " << build::k_git_commit << ")\n";
    return k_exit_ok;
  }
  if (cmd == "kernel") {
    if (args.size() < 2 || args[1] == "--help") {
      (args.size() < 2 ? err : out) << k_usage;
      return args.size() < 2 ? k_exit_usage : k_exit_ok;
    }
    std::vector<std::string> rest(args.begin() + 2, args.end());
    if (args[1] == "build") return kernel_build(rest, out, err);
    if (args[1] == "check-config") return kernel_check_config(rest, out, err);
    if (args[1] == "profiles") return kernel_profiles(rest, out, err);
    if (args[1] == "diff") return kernel_diff(rest, out, err);
    err << "fleetctl: unknown command 'kernel " << args[1] << "'\n\n" << k_usage;
    return k_exit_usage;
  }
  if (cmd == "bundle") {
    if (args.size() < 2) return bundle_command("", {}, out, err);
    return bundle_command(args[1], std::vector<std::string>(args.begin() + 2, args.end()), out, err);
  }
  if (cmd == "model") {
    return model_command(args.size() < 2 ? "" : args[1], std::vector<std::string>(args.begin() + std::min<std::size_t>(2, args.size()), args.end()),
                         out, err, default_state_db());
  }
  if (cmd == "rollout") return rollout_cmd(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
  if (cmd == "rollback") return rollback_cmd(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
  if (cmd == "serve") return serve_cmd(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
  if (cmd == "status") return status_cmd(std::vector<std::string>(args.begin() + 1, args.end()), out, err);
  if (cmd == "inventory") {
    if (args.size() < 2 || (args[1] != "check" && args[1] != "list")) {
      err << "fleetctl inventory: say check or list\n\n" << k_usage;
      return k_exit_usage;
    }
    return inventory_cmd(args[1], std::vector<std::string>(args.begin() + 2, args.end()), out, err);
  }
  err << "fleetctl: unknown command '" << cmd << "'\n\n" << k_usage;
  return k_exit_usage;
}

}  // namespace fleet::controller::cli
