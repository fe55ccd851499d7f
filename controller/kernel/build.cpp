#include "controller/kernel/build.hpp"

#include <fcntl.h>
#include <fnmatch.h>
#include <sys/file.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <utility>

#include <algorithm>
#include <chrono>
#include <cstdlib>
#include <fstream>
#include <set>

#include "common/contract.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/kconfig.hpp"
#include "common/process.hpp"
#include "controller/kernel/config_check.hpp"

namespace fleet::kernel {
namespace stdfs = std::filesystem;

namespace {

using Clock = std::chrono::steady_clock;

// Everything one build touches, so the steps below stay short.
struct Job {
  const Profile& profile;
  const BuildOptions& opt;
  Progress& progress;
  stdfs::path src;        // kernel source tree
  stdfs::path kbuild;     // O= build tree (kept: incremental rebuilds)
  stdfs::path stage;      // <out>.new: the bundle being assembled, and build.log
  std::ofstream log;
  std::vector<std::string> notes;
};

std::string first_line(const std::string& s) { return s.substr(0, s.find('\n')); }

void note(Job& job, const std::string& what) {
  job.notes.push_back(what);
  job.progress.note(what);
  job.log << "note: " << what << "\n";
}

std::string log_tail(const stdfs::path& log_path, size_t lines) {
  auto text = fs::read_file(log_path).value_or("");
  std::vector<std::string> all;
  size_t start = 0;
  for (size_t nl; (nl = text.find('\n', start)) != std::string::npos; start = nl + 1) {
    all.push_back(text.substr(start, nl - start));
  }
  std::string out;
  for (size_t i = all.size() > lines ? all.size() - lines : 0; i < all.size(); ++i) out += "    " + all[i] + "\n";
  return out;
}

// Runs a command with its output in build.log; `on_line` sees each line too.
Result<void> run_logged(Job& job, process::Command cmd, const process::LineSink& on_line = {}) {
  job.log << "$ " << process::render(cmd.argv) << "\n" << std::flush;
  auto outcome = FLEET_TRY(process::run(cmd, [&](std::string_view line) {
    job.log << line << "\n";
    if (on_line) on_line(line);
  }));
  job.log.flush();
  if (outcome.exit_code != 0 || outcome.timed_out) {
    return fail(outcome.timed_out ? Errc::timeout : Errc::process_failed,
                process::render(cmd.argv) + " failed (" +
                    (outcome.signal ? "signal " + std::to_string(outcome.signal)
                                    : "exit status " + std::to_string(outcome.exit_code)) +
                    "); last lines of " + (job.stage / bundle::k_build_log).string() + ":\n" +
                    log_tail(job.stage / bundle::k_build_log, 25));
  }
  return {};
}

std::vector<std::string> make_argv(const Job& job, bool use_ccache) {
  const std::string cross = job.opt.cross_compile;
  std::vector<std::string> argv = {"make", "-C", job.src.string(), "O=" + job.kbuild.string(), "ARCH=arm64",
                                   "CROSS_COMPILE=" + cross};
  if (use_ccache) {
    argv.push_back("CC=ccache " + cross + "gcc");
    argv.push_back("HOSTCC=ccache gcc");
  }
  // Reproducible: the same inputs give the same Image, and ccache keeps hitting.
  argv.push_back("KBUILD_BUILD_TIMESTAMP=@0");
  argv.push_back("KBUILD_BUILD_USER=fleetctl");
  argv.push_back("KBUILD_BUILD_HOST=fleetctl");
  argv.push_back("KBUILD_BUILD_VERSION=1");
  argv.push_back("LOCALVERSION=" + job.profile.localversion);
  return argv;
}

// Every make runs with CCACHE_BASEDIR at the cache folder: ccache then hashes paths below
// it as relative ones, so a cache moved elsewhere (FLEETCTL_CACHE, a new HOME) still hits.
process::Command make_cmd(const Job& job, std::vector<std::string> argv, std::chrono::seconds timeout) {
  return {std::move(argv), {}, {{"CCACHE_BASEDIR", job.opt.cache_dir.string()}}, timeout};
}

bool have_program(const std::string& name) {
  auto r = process::capture({{"sh", "-c", "command -v \"$0\"", name}, {}, {}, std::chrono::seconds(10)});
  return r.has_value() && !r->empty();
}

struct Source {
  stdfs::path dir;
  std::string identity;
};

Result<Source> tarball_source(const Profile& p, const BuildOptions& opt, Progress& progress) {
  const stdfs::path& tarball = p.source.tarball;
  if (!stdfs::is_regular_file(tarball)) {
    return fail(Errc::not_found, "profile " + p.name + ": source tarball " + tarball.string() +
                                     " is missing (Debian package linux-source-6.1; scripts/setup.sh installs it)");
  }
  std::string sha = FLEET_TRY(hash::sha256_file(tarball));
  stdfs::path dir = opt.cache_dir / "src" / sha.substr(0, 16);
  std::error_code ec;
  if (!stdfs::is_directory(dir)) {
    progress.step("extracting " + tarball.string() + " (once; kept in " + dir.string() + ")");
    stdfs::path partial = dir.string() + ".partial";
    stdfs::remove_all(partial, ec);
    stdfs::create_directories(partial, ec);
    if (ec) return fail(Errc::io, "cannot create " + partial.string() + ": " + ec.message());
    FLEET_TRY(process::capture({{"tar", "-xf", tarball.string(), "-C", partial.string()}, {}, {}, std::chrono::minutes(10)}));
    stdfs::rename(partial, dir, ec);
    if (ec) return fail(Errc::io, "cannot rename " + partial.string() + ": " + ec.message());
  }
  for (const auto& e : stdfs::directory_iterator(dir, ec)) {
    if (e.is_directory() && stdfs::exists(e.path() / "Makefile")) return Source{e.path(), "tarball sha256 " + sha};
  }
  return fail(Errc::invalid_input, tarball.string() + " holds no kernel tree (no folder with a Makefile)");
}

// A --source checkout on another branch than the profile pins builds, with a note saying so.
void note_branch(const Profile& p, const stdfs::path& dir, Job& job) {
  if (p.source.git_ref.empty()) return;
  auto branch = process::capture({{"git", "-C", dir.string(), "rev-parse", "--abbrev-ref", "HEAD"}, {}, {}, std::chrono::minutes(2)});
  if (branch && first_line(*branch) != p.source.git_ref) {
    note(job, "source is on '" + first_line(*branch) + "', the profile pins '" + p.source.git_ref + "'");
  }
}

Result<Source> user_source(const Profile& p, const stdfs::path& dir) {
  if (!stdfs::is_regular_file(dir / "Makefile") || !stdfs::is_directory(dir / "arch" / "arm64")) {
    return fail(Errc::invalid_input, "--source " + dir.string() + " is not a Linux kernel tree (no Makefile or arch/arm64)");
  }
  if (p.base_target.ends_with("_defconfig") && !stdfs::exists(dir / "arch/arm64/configs" / p.base_target)) {
    return fail(Errc::invalid_input, "--source " + dir.string() + " has no arch/arm64/configs/" + p.base_target +
                                         (p.source.git_url.empty() ? "" : ": is it a clone of " + p.source.git_url + "?"));
  }
  auto git = [&](std::vector<std::string> a) {
    a.insert(a.begin(), {"git", "-C", dir.string()});
    return process::capture({a, {}, {}, std::chrono::minutes(2)});
  };
  if (auto head = git({"rev-parse", "HEAD"})) {
    std::string identity = "git " + first_line(*head);
    auto diff = git({"diff", "HEAD"});
    if (diff && !diff->empty()) identity += " dirty " + hash::sha256_hex(*diff);
    return Source{dir, identity};
  }
  // Not a git checkout: name it by every file's path, size and mtime.
  hash::Sha256 h;
  std::error_code ec;
  for (auto it = stdfs::recursive_directory_iterator(dir, ec); !ec && it != stdfs::recursive_directory_iterator();
       it.increment(ec)) {
    if (!it->is_regular_file()) continue;
    auto t = it->last_write_time().time_since_epoch().count();
    h.update(it->path().string() + " " + std::to_string(it->file_size()) + " " + std::to_string(t) + "\n");
  }
  return Source{dir, "tree " + h.hex()};
}

}  // namespace

Result<std::vector<std::pair<std::string, std::string>>> fragment_texts(const Profile& p) {
  std::vector<std::pair<std::string, std::string>> out;
  std::vector<stdfs::path> all = p.base_fragments;
  all.insert(all.end(), p.fragments.begin(), p.fragments.end());
  for (const auto& f : all) {
    std::string text = FLEET_TRY(fs::read_file(f));
    out.emplace_back(f.parent_path().filename().string() + "/" + f.filename().string(), text);
  }
  out.emplace_back("profile settings (" + p.file.filename().string() + ")", settings_fragment(p));
  return out;
}

namespace {

// Copies a verified bundle folder to `to` through a staging folder and a rename.
Result<void> copy_bundle(const stdfs::path& from, const stdfs::path& to) {
  std::error_code ec;
  stdfs::path tmp = to.string() + ".copy";
  stdfs::remove_all(tmp, ec);
  stdfs::create_directories(tmp.parent_path(), ec);
  stdfs::copy(from, tmp, stdfs::copy_options::recursive, ec);
  if (ec) return fail(Errc::io, "cannot copy " + from.string() + " to " + tmp.string() + ": " + ec.message());
  stdfs::remove_all(to, ec);
  stdfs::rename(tmp, to, ec);
  if (ec) return fail(Errc::io, "cannot rename " + tmp.string() + " to " + to.string() + ": " + ec.message());
  return {};
}

Result<ConfigReport> configure(Job& job, bool use_ccache, const std::vector<std::pair<std::string, std::string>>& fragments) {
  const Profile& p = job.profile;
  job.progress.step("configuring: " + p.base_target + " + " + std::to_string(fragments.size()) + " fragments");
  auto argv = make_argv(job, use_ccache);
  argv.push_back(p.base_target);
  FLEET_TRY(run_logged(job, make_cmd(job, argv, std::chrono::minutes(10))));

  stdfs::path settings = job.kbuild / "fleet-settings.config";
  FLEET_TRY(fs::write_file_atomic(settings, settings_fragment(p)));
  std::vector<std::string> merge = {(job.src / "scripts/kconfig/merge_config.sh").string(), "-m", "-O",
                                    job.kbuild.string(), (job.kbuild / ".config").string()};
  for (const auto& f : p.base_fragments) merge.push_back(f.string());
  for (const auto& f : p.fragments) merge.push_back(f.string());
  merge.push_back(settings.string());
  process::Command cmd{merge, job.kbuild, {{"ARCH", "arm64"}, {"CROSS_COMPILE", job.opt.cross_compile}},
                       std::chrono::minutes(5)};
  FLEET_TRY(run_logged(job, cmd));
  argv = make_argv(job, use_ccache);
  argv.push_back("olddefconfig");
  FLEET_TRY(run_logged(job, make_cmd(job, argv, std::chrono::minutes(10))));

  // Every symbol a fragment asked for must be in the final .config as asked.
  std::string config_text = FLEET_TRY(fs::read_file(job.kbuild / ".config"));
  auto config = kconfig::to_map(kconfig::parse(config_text));
  auto wanted = requirements(fragments);
  std::set<std::string> optional(p.optional_symbols.begin(), p.optional_symbols.end());
  auto findings = check_config(wanted, config, optional, {});
  if (!findings.empty()) {
    job.progress.step("explaining " + std::to_string(findings.size()) + " differences from Kconfig");
    findings = check_config(wanted, config, optional, index_tree(job.src));
  }
  ConfigReport report;
  for (const auto& w : wanted) {
    SymbolCheck c{w, "n", true, false};
    if (auto it = config.find(w.symbol); it != config.end()) c.actual = it->second;
    for (const auto& f : findings) {
      if (f.wanted.symbol != w.symbol) continue;
      c.ok = false;
      c.optional_missing = f.optional_missing;
    }
    report.symbols.push_back(c);
  }
  report.contract_conflicts = contract_conflicts(p.contract, config);
  std::string errors;
  for (const auto& f : findings) {
    if (f.optional_missing) note(job, f.explanation);
    else errors += "  " + f.explanation + "\n";
  }
  for (const auto& c : report.contract_conflicts) errors += "  " + c + "\n";
  if (!errors.empty()) {
    job.log << "config check failed:\n" << errors;
    // --config-only reports a failed check as its result (every symbol, the .config kept);
    // a build stops here.
    if (job.opt.stop == BuildOptions::Stop::config) return report;
    return fail(Errc::mismatch, "profile " + p.name + ": the final .config does not give what the profile asks for:\n" +
                                    errors + "  (full log: " + (job.stage / bundle::k_build_log).string() + ")");
  }
  job.log << "config check: all " << wanted.size() << " requested symbols as asked\n";
  return report;
}

// One build at a time in a build tree: two fleetctl processes (or ctest running the variant
// builds side by side) would otherwise write the same .config and objects. The lock is
// released when the process ends, however it ends.
class TreeLock {
 public:
  static Result<TreeLock> take(const stdfs::path& tree, Progress& progress) {
    stdfs::path file = tree.string() + ".lock";
    int fd = ::open(file.c_str(), O_RDWR | O_CREAT | O_CLOEXEC, 0644);
    if (fd < 0) return fail(Errc::io, "cannot open the build tree's lock " + file.string() + ": " + std::strerror(errno));
    if (::flock(fd, LOCK_EX | LOCK_NB) != 0) {
      progress.step("waiting for another build in " + tree.string());
      while (::flock(fd, LOCK_EX) != 0) {
        if (errno != EINTR) {
          int e = errno;
          ::close(fd);
          return fail(Errc::io, "cannot lock " + file.string() + ": " + std::strerror(e));
        }
      }
    }
    return TreeLock(fd);
  }
  TreeLock(TreeLock&& o) noexcept : fd_(std::exchange(o.fd_, -1)) {}
  TreeLock& operator=(TreeLock&&) = delete;
  ~TreeLock() {
    if (fd_ >= 0) ::close(fd_);
  }

 private:
  explicit TreeLock(int fd) : fd_(fd) {}
  int fd_;
};

Result<void> compile(Job& job, bool use_ccache) {
  stdfs::path count_file = job.kbuild / ".fleet-step-count";
  int expected = std::atoi(fs::read_file(count_file).value_or("0").c_str());
  std::string targets;
  for (const auto& t : job.profile.targets) targets += (targets.empty() ? "" : " ") + t;
  job.progress.step("compiling " + targets + " with " + std::to_string(job.opt.jobs) + " jobs" +
                    (use_ccache ? " (ccache)" : "") + (expected ? "" : "; the first build takes minutes"));
  auto argv = make_argv(job, use_ccache);
  argv.push_back("-j" + std::to_string(job.opt.jobs));
  argv.insert(argv.end(), job.profile.targets.begin(), job.profile.targets.end());
  int done = 0;
  // A bound for a make that hangs, not a budget: a cold bcm2712_defconfig build with its
  // ~1,300 modules is about 9,500 kbuild steps, near 60 a minute on 2 cores, over 2.5 hours.
  FLEET_TRY(run_logged(job, make_cmd(job, argv, std::chrono::hours(10)), [&](std::string_view line) {
    if (auto step = kbuild_step(line)) job.progress.compile(*step, ++done, expected);
  }));
  // The count only sizes the next build's progress bar: a failure to keep it is said, not fatal.
  if (done > 0) {
    if (auto kept = fs::write_file_atomic(count_file, std::to_string(done)); !kept) note(job, kept.error().message);
  }
  return {};
}

// Files of a.from matching a.match: generated ones from the build tree, and those kbuild does
// not generate (overlays/README is a source file) from the source tree.
Result<void> copy_matching(Job& job, const Artifacts& a, const stdfs::path& to) {
  std::error_code ec;
  stdfs::create_directories(to, ec);
  std::set<std::string> copied;
  for (const stdfs::path& from : {job.kbuild / a.from, job.src / a.from}) {
    for (const auto& e : stdfs::directory_iterator(from, ec)) {
      if (!e.is_regular_file()) continue;
      std::string name = e.path().filename().string();
      bool match = std::any_of(a.match.begin(), a.match.end(),
                               [&](const std::string& pat) { return ::fnmatch(pat.c_str(), name.c_str(), 0) == 0; });
      if (!match || copied.contains(name)) continue;
      std::error_code copy_ec;
      stdfs::copy_file(e.path(), to / name, stdfs::copy_options::overwrite_existing, copy_ec);
      if (copy_ec) return fail(Errc::io, "cannot copy " + e.path().string() + ": " + copy_ec.message());
      copied.insert(name);
    }
  }
  if (copied.empty()) return fail(Errc::not_found, "no files matching the profile in " + (job.kbuild / a.from).string());
  return {};
}

Result<bundle::Manifest> assemble(Job& job, bool use_ccache, const std::string& key) {
  const Profile& p = job.profile;
  job.progress.step("assembling the bundle");
  auto argv = make_argv(job, use_ccache);
  argv.insert(argv.end(), {"-s", "kernelrelease"});
  std::string release = first_line(FLEET_TRY(process::capture(make_cmd(job, argv, std::chrono::minutes(2)))));
  if (release.empty()) return fail(Errc::process_failed, "make kernelrelease printed nothing");

  std::error_code ec;
  stdfs::path boot = job.stage / "boot";
  stdfs::create_directories(boot, ec);
  stdfs::copy_file(job.kbuild / p.image_from, boot / p.image_name, stdfs::copy_options::overwrite_existing, ec);
  if (ec) return fail(Errc::io, "cannot copy the image " + (job.kbuild / p.image_from).string() + ": " + ec.message());
  if (p.dtbs) FLEET_TRY(copy_matching(job, *p.dtbs, boot));
  if (p.overlays) FLEET_TRY(copy_matching(job, *p.overlays, boot / "overlays"));

  if (std::find(p.targets.begin(), p.targets.end(), "modules") != p.targets.end()) {
    auto m = make_argv(job, use_ccache);
    m.insert(m.end(), {"INSTALL_MOD_PATH=" + (job.stage / "modules").string(), "INSTALL_MOD_STRIP=1", "modules_install"});
    FLEET_TRY(run_logged(job, make_cmd(job, m, std::chrono::minutes(20))));
    // build and source point back into the build machine's trees: useless on a board,
    // and a FAT or tar copy cannot hold them.
    for (const char* link : {"build", "source"}) stdfs::remove(job.stage / "modules/lib/modules" / release / link, ec);
  }
  stdfs::copy_file(job.kbuild / ".config", job.stage / "config", stdfs::copy_options::overwrite_existing, ec);
  if (ec) return fail(Errc::io, "cannot copy .config: " + ec.message());

  Contract contract = p.contract;
  contract.kernel_release = release;
  FLEET_TRY(fs::write_file_atomic(job.stage / bundle::k_contract, contract_to_json(contract)));

  bundle::Manifest m;
  m.profile = p.name;
  m.kernel_release = release;
  m.build_key = key;
  m.image = "boot/" + p.image_name;
  m.cmdline_extra = p.cmdline;
  job.log.flush();
  FLEET_TRY(bundle::hash_tree(job.stage, m));
  FLEET_TRY(fs::write_file_atomic(job.stage / bundle::k_manifest, bundle::manifest_to_json(m)));
  return m;
}

// Replaces out_dir by the staged folder: out -> out.old, stage -> out, remove out.old.
Result<void> publish(const stdfs::path& stage, const stdfs::path& out) {
  std::error_code ec;
  stdfs::path old = out.string() + ".old";
  stdfs::remove_all(old, ec);
  if (stdfs::exists(out)) {
    stdfs::rename(out, old, ec);
    if (ec) return fail(Errc::io, "cannot move the previous bundle aside: " + ec.message());
  }
  stdfs::rename(stage, out, ec);
  if (ec) return fail(Errc::io, "cannot move " + stage.string() + " to " + out.string() + ": " + ec.message());
  stdfs::remove_all(old, ec);
  return {};
}

}  // namespace

bool ConfigReport::ok() const {
  return contract_conflicts.empty() &&
         std::all_of(symbols.begin(), symbols.end(), [](const SymbolCheck& c) { return c.ok || c.optional_missing; });
}

stdfs::path build_tree(const stdfs::path& cache_dir, std::string_view source_dir, std::string_view base_target) {
  return cache_dir / "kbuild" / (std::string(base_target) + "-" + hash::sha256_hex(source_dir).substr(0, 12));
}

const char* how_name(How how) {
  switch (how) {
    case How::built: return "built";
    case How::from_cache: return "from_cache";
    case How::up_to_date: return "up_to_date";
  }
  return "?";
}

stdfs::path default_cache_dir() {
  if (const char* c = std::getenv("FLEETCTL_CACHE"); c && *c) return c;
  if (const char* x = std::getenv("XDG_CACHE_HOME"); x && *x) return stdfs::path(x) / "fleetctl";
  if (const char* h = std::getenv("HOME"); h && *h) return stdfs::path(h) / ".cache" / "fleetctl";
  return stdfs::temp_directory_path() / "fleetctl-cache";
}

std::string build_key(std::string_view source_identity, std::string_view profile_text,
                      const std::vector<std::pair<std::string, std::string>>& fragments, std::string_view toolchain) {
  hash::Sha256 h;
  h.update("fleetctl bundle format " + std::to_string(bundle::k_format) + "\n");
  h.update("source " + std::string(source_identity) + "\n");
  h.update("profile " + hash::sha256_hex(profile_text) + "\n");
  for (const auto& [name, text] : fragments) h.update("fragment " + name + " " + hash::sha256_hex(text) + "\n");
  h.update("toolchain " + std::string(toolchain) + "\n");
  return h.hex();
}

std::optional<std::string_view> kbuild_step(std::string_view line) {
  // kbuild's quiet output: two spaces, an upper-case tag, spaces, the target.
  if (line.size() < 4 || line[0] != ' ' || line[1] != ' ' || !std::isupper(static_cast<unsigned char>(line[2]))) {
    return std::nullopt;
  }
  size_t tag_end = line.find(' ', 2);
  if (tag_end == std::string_view::npos) return std::nullopt;
  for (size_t i = 2; i < tag_end; ++i) {
    char c = line[i];
    if (!std::isupper(static_cast<unsigned char>(c)) && !std::isdigit(static_cast<unsigned char>(c)) && c != '_' && c != '-') {
      return std::nullopt;
    }
  }
  return line.substr(2);
}

Result<BuildResult> build(const Profile& p, const BuildOptions& opt, Progress& progress) {
  const auto started = Clock::now();
  auto seconds = [&] { return std::chrono::duration<double>(Clock::now() - started).count(); };
  std::error_code ec;
  stdfs::create_directories(opt.cache_dir, ec);
  if (ec) return fail(Errc::io, "cannot create the cache folder " + opt.cache_dir.string() + ": " + ec.message());

  if (!have_program(opt.cross_compile + "gcc")) {
    return fail(Errc::not_found, opt.cross_compile + "gcc not found: install gcc-aarch64-linux-gnu (scripts/setup.sh)");
  }
  Source source;
  if (opt.source_dir) {
    source = FLEET_TRY(user_source(p, stdfs::absolute(*opt.source_dir)));
  } else if (!p.source.tarball.empty()) {
    source = FLEET_TRY(tarball_source(p, opt, progress));
  } else {
    return fail(Errc::invalid_input,
                "profile " + p.name + " builds from " + p.source.git_url + " at " + p.source.git_ref +
                    ", and this machine has no copy of that tree.\n  Clone it and pass --source:\n"
                    "    git clone --depth 1 --branch " + p.source.git_ref + " " + p.source.git_url + " linux-rpi\n"
                    "    fleetctl kernel build --profile " + p.name + " --source linux-rpi");
  }
  // A profile that extends another is named by both texts: a change to rpi5.yaml is a new
  // rpi5-qemu build too.
  std::string profile_text;
  for (const auto& f : p.files) profile_text += FLEET_TRY(fs::read_file(f));
  auto fragments = FLEET_TRY(fragment_texts(p));
  std::string toolchain = first_line(
      FLEET_TRY(process::capture({{opt.cross_compile + "gcc", "--version"}, {}, {}, std::chrono::seconds(30)})));
  const std::string key = build_key(source.identity, profile_text, fragments, toolchain);

  BuildResult result;
  result.bundle_dir = stdfs::absolute(opt.out_dir);
  const bool config_only = opt.stop == BuildOptions::Stop::config;
  if (!config_only && stdfs::exists(result.bundle_dir / bundle::k_manifest)) {
    if (auto m = bundle::verify(result.bundle_dir); m && m->build_key == key) {
      result.manifest = *m;
      result.how = How::up_to_date;
      result.seconds = seconds();
      return result;
    }
  }
  stdfs::path cached = opt.cache_dir / "bundles" / key;
  if (!config_only && stdfs::exists(cached / bundle::k_manifest)) {
    if (auto m = bundle::verify(cached); m && m->build_key == key) {
      progress.step("same inputs as a cached build: copying " + cached.string());
      FLEET_TRY(copy_bundle(cached, result.bundle_dir));
      result.manifest = *m;
      result.how = How::from_cache;
      result.seconds = seconds();
      return result;
    }
  }

  // The tree is named by where the source is, not by its content: a `git pull` of the Pi tree
  // rebuilds incrementally in the same tree instead of starting a new one.
  Job job{p, opt, progress, source.dir, build_tree(opt.cache_dir, stdfs::weakly_canonical(source.dir).string(), p.base_target),
          stdfs::path(result.bundle_dir.string() + (config_only ? ".config-check" : ".new")), {}, {}};
  stdfs::remove_all(job.stage, ec);
  stdfs::create_directories(job.stage, ec);
  stdfs::create_directories(job.kbuild, ec);
  if (ec) return fail(Errc::io, "cannot create " + job.stage.string() + ": " + ec.message());
  TreeLock lock = FLEET_TRY(TreeLock::take(job.kbuild, progress));
  job.log.open(job.stage / bundle::k_build_log);
  job.log << "fleetctl kernel build: profile " << p.name << ", source " << source.dir.string() << " ("
          << source.identity << "), key " << key << ", tree " << job.kbuild.string() << "\n";
  if (opt.source_dir) note_branch(p, stdfs::absolute(*opt.source_dir), job);
  bool use_ccache = have_program("ccache");
  if (!use_ccache) note(job, "ccache not found: every build compiles from scratch (install ccache)");

  result.config = FLEET_TRY(configure(job, use_ccache, fragments));
  if (config_only) {
    result.config_file = result.bundle_dir.string() + ".config";
    stdfs::create_directories(result.config_file.parent_path(), ec);
    std::string text = FLEET_TRY(fs::read_file(job.kbuild / ".config"));
    FLEET_TRY(fs::write_file_atomic(result.config_file, text));
    job.log.close();
    stdfs::remove_all(job.stage, ec);
    result.how = How::built;
    result.notes = job.notes;
    result.seconds = seconds();
    return result;
  }
  FLEET_TRY(compile(job, use_ccache));
  result.manifest = FLEET_TRY(assemble(job, use_ccache, key));
  job.log << "built in " << seconds() << " s\n";
  job.log.close();
  FLEET_TRY(publish(job.stage, result.bundle_dir));
  if (auto r = copy_bundle(result.bundle_dir, cached); !r) progress.note("could not cache the bundle: " + r.error().message);
  result.how = How::built;
  result.notes = job.notes;
  result.seconds = seconds();
  return result;
}

}  // namespace fleet::kernel
