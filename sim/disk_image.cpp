#include "sim/disk_image.hpp"

#include <unistd.h>

#include <algorithm>
#include <atomic>

#include "common/fs.hpp"
#include "common/process.hpp"

namespace fleet::sim::disk {
namespace stdfs = std::filesystem;
namespace {

using namespace std::chrono_literals;

// mtools would otherwise check the image's geometry against a floppy's and refuse.
const std::vector<std::pair<std::string, std::string>> k_mtools_env = {{"MTOOLS_SKIP_CHECK", "1"}};

struct ToolRun {
  int exit_code = -1;
  std::string messages;  // stderr (and stdout when it is not redirected)
};

// Runs a tool, its stdout to `stdout_file` when given; Err only if it could not run or
// timed out (the exit status is the caller's to read).
Result<ToolRun> run_tool(std::vector<std::string> argv, const stdfs::path& stdout_file = {}) {
  process::Command cmd{std::move(argv), {}, k_mtools_env, 120s, stdout_file};
  ToolRun r;
  auto outcome = FLEET_TRY(process::run(cmd, [&](std::string_view line) {
    r.messages.append(line);
    r.messages.push_back('\n');
  }));
  if (outcome.timed_out) return fail(Errc::timeout, process::render(cmd.argv) + " took more than 120 s");
  r.exit_code = outcome.exit_code;
  return r;
}

Result<void> run_ok(std::vector<std::string> argv) {
  const std::string shown = process::render(argv);
  ToolRun r = FLEET_TRY(run_tool(std::move(argv)));
  if (r.exit_code != 0) return fail(Errc::process_failed, shown + " failed: " + r.messages);
  return {};
}

Result<void> make_sparse(const stdfs::path& image, std::uint64_t mib) {
  if (stdfs::exists(image)) return fail(Errc::invalid_input, "disk image " + image.string() + " already exists");
  FLEET_TRY(fs::write_file_atomic(image, ""));
  std::error_code ec;
  stdfs::resize_file(image, mib * 1024 * 1024, ec);
  if (ec) return fail(Errc::io, "cannot size " + image.string() + ": " + ec.message());
  return {};
}

// A scratch file beside the image for a tool's stdout (the board folder, not /tmp: a kernel
// is tens of MB).
struct Scratch {
  stdfs::path path;
  // Unique per process and call: the runner and a test may read the same image at once.
  explicit Scratch(const stdfs::path& image)
      : path(image.string() + ".out-" + std::to_string(::getpid()) + "-" + std::to_string(next_id())) {}
  static unsigned next_id() {
    static std::atomic<unsigned> n{0};
    return n++;
  }
  ~Scratch() {
    std::error_code ec;
    stdfs::remove_all(path, ec);
  }
};

std::string fat_path(const std::string& path) { return "::/" + path; }

// The non-blank lines of a tool's output, without the spaces and CRs around them.
std::vector<std::string> trimmed_lines(std::string_view text) {
  std::vector<std::string> lines;
  size_t pos = 0;
  while (pos < text.size()) {
    size_t nl = text.find('\n', pos);
    std::string_view line = text.substr(pos, nl == std::string_view::npos ? std::string_view::npos : nl - pos);
    pos = nl == std::string_view::npos ? text.size() : nl + 1;
    size_t start = line.find_first_not_of(" \t\r");
    if (start == std::string_view::npos) continue;
    size_t end = line.find_last_not_of(" \t\r");
    lines.emplace_back(line.substr(start, end - start + 1));
  }
  return lines;
}

}  // namespace

std::string image_path_problem(const std::string& path) {
  if (path.empty()) return "an empty path";
  if (path.front() == '/') return "'" + path + "' is absolute";
  for (unsigned char c : path) {
    // mtools expands * ? [ ] itself: a name from config.txt must match one file, as on a Pi.
    if (c < 0x21 || c > 0x7e || c == '"' || c == '\'' || c == '\\' || c == '*' || c == '?' || c == '[' || c == ']') {
      return "'" + path + "' holds a space, a quote, a wildcard or an unprintable character";
    }
  }
  size_t pos = 0;
  while (pos <= path.size()) {
    size_t slash = path.find('/', pos);
    std::string part = path.substr(pos, slash == std::string::npos ? std::string::npos : slash - pos);
    if (part == "..") return "'" + path + "' climbs out with ..";
    if (slash == std::string::npos) break;
    pos = slash + 1;
  }
  return "";
}

Result<void> make_fat(const stdfs::path& image, std::uint64_t mib, const std::string& label, const stdfs::path& from) {
  FLEET_TRY(make_sparse(image, mib));
  // FAT32 as on a Pi's bootfs; mkfs.fat warns that a lower-case label "might not work" on
  // some systems: Raspberry Pi OS's label is lower-case all the same.
  if (auto r = run_ok({"mkfs.vfat", "-F", "32", "-n", label, image.string()}); !r) {
    std::error_code ec;
    stdfs::remove(image, ec);
    return std::unexpected(r.error());
  }
  if (from.empty()) return {};
  std::vector<std::string> argv = {"mcopy", "-s", "-Q", "-i", image.string()};
  std::error_code ec;
  std::vector<std::string> entries;
  // Absolute: mtools would read "a:x" as drive a:.
  for (const auto& e : stdfs::directory_iterator(stdfs::absolute(from), ec)) entries.push_back(e.path().string());
  if (ec) return fail(Errc::io, "cannot list " + from.string() + ": " + ec.message());
  if (entries.empty()) return {};
  std::sort(entries.begin(), entries.end());
  argv.insert(argv.end(), entries.begin(), entries.end());
  argv.push_back("::/");
  if (auto r = run_ok(std::move(argv)); !r) {
    stdfs::remove(image, ec);
    return std::unexpected(r.error());
  }
  return {};
}

Result<void> make_ext4(const stdfs::path& image, std::uint64_t mib, const std::string& label, const stdfs::path& from) {
  FLEET_TRY(make_sparse(image, mib));
  if (auto r = run_ok({"mkfs.ext4", "-q", "-F", "-L", label, "-d", from.string(), image.string()}); !r) {
    std::error_code ec;
    stdfs::remove(image, ec);
    return std::unexpected(r.error());
  }
  return {};
}

Result<std::optional<std::string>> read_fat_file(const stdfs::path& image, const std::string& path) {
  if (auto p = image_path_problem(path); !p.empty()) return fail(Errc::invalid_input, "boot partition path: " + p);
  // mcopy, not mtype: mtype of a folder prints the files inside it; mcopy makes a folder.
  Scratch out(image);
  {
    std::error_code ec;
    stdfs::remove_all(out.path, ec);
  }
  ToolRun r = FLEET_TRY(run_tool({"mcopy", "-n", "-i", image.string(), fat_path(path), out.path.string()}));
  if (r.exit_code != 0) {
    if (r.messages.find("not found") != std::string::npos) return std::nullopt;  // 'File "::/x" not found'
    return fail(Errc::io, "cannot read " + path + " from the FAT image " + image.string() + ": " + r.messages);
  }
  if (!stdfs::is_regular_file(out.path)) return std::nullopt;  // a folder is not a file
  return FLEET_TRY(fs::read_file(out.path));
}

Result<std::vector<std::string>> list_fat(const stdfs::path& image) {
  Scratch out(image);
  ToolRun r = FLEET_TRY(run_tool({"mdir", "-/", "-b", "-i", image.string(), "::/"}, out.path));
  if (r.exit_code != 0) return fail(Errc::io, "cannot list the FAT image " + image.string() + ": " + r.messages);
  std::string text = FLEET_TRY(fs::read_file(out.path));
  std::vector<std::string> names;
  for (std::string& line : trimmed_lines(text)) {
    if (line.starts_with("::/")) line = line.substr(3);
    if (!line.empty()) names.push_back(line);
  }
  return names;
}

Result<void> write_fat_file(const stdfs::path& image, const std::string& path, const std::string& data) {
  if (auto p = image_path_problem(path); !p.empty()) return fail(Errc::invalid_input, "boot partition path: " + p);
  // Its folders first (mmd refuses one that exists, so only the missing ones).
  auto existing = FLEET_TRY(list_fat(image));
  auto has = [&](const std::string& dir) {
    return std::any_of(existing.begin(), existing.end(), [&](const std::string& e) {
      return e.size() == dir.size() + 1 && e.back() == '/' &&
             std::equal(dir.begin(), dir.end(), e.begin(), [](char a, char b) { return std::tolower(a) == std::tolower(b); });
    });
  };
  for (size_t slash = path.find('/'); slash != std::string::npos; slash = path.find('/', slash + 1)) {
    std::string dir = path.substr(0, slash);
    if (!has(dir)) FLEET_TRY(run_ok({"mmd", "-i", image.string(), fat_path(dir)}));
  }
  Scratch in(image);
  FLEET_TRY(fs::write_file_atomic(in.path, data));
  return run_ok({"mcopy", "-o", "-i", image.string(), in.path.string(), fat_path(path)});
}

Result<FsckReport> fsck_fat(const stdfs::path& image) {
  ToolRun r = FLEET_TRY(run_tool({"fsck.vfat", "-n", image.string()}));
  // 0: clean; 1: errors found (and, with -n, left); anything else: it could not check.
  if (r.exit_code != 0 && r.exit_code != 1) {
    return fail(Errc::process_failed, "fsck.vfat -n " + image.string() + " could not check it: " + r.messages);
  }
  return FsckReport{r.exit_code == 0, fsck_damage(r.messages), r.messages};
}

std::vector<std::string> fsck_damage(const std::string& output) {
  // fsck.fat 4.2's lines that are not damage: its banner and summary, and what an unclean
  // unmount leaves (Linux sets the dirty bit, byte 0x41 of the boot sector, when it mounts
  // read-write and clears it on unmount; the backup boot sector keeps the clean copy).
  static const char* const k_benign_prefixes[] = {
      "fsck.fat ",
      "Leaving filesystem unchanged.",
      "There are differences between boot sector and its backup.",
      "This is mostly harmless. Differences: (offset:original/backup)",
      "65:01/00",
      "Not automatically fixing this.",
      "Dirty bit is set. Fs was not properly unmounted",
      "Automatically removing dirty bit.",
      "Free cluster summary wrong",
      "Auto-correcting.",
      "Free cluster summary uninitialized",
  };
  std::vector<std::string> damage;
  for (const std::string& line : trimmed_lines(output)) {
    bool benign = false;
    for (const char* p : k_benign_prefixes) benign = benign || line.starts_with(p);
    // The summary: "IMAGE: 4 files, 4/130811 clusters".
    if (line.find(" files, ") != std::string::npos && line.ends_with(" clusters")) benign = true;
    if (!benign) damage.push_back(line);
  }
  return damage;
}

Result<std::optional<std::string>> read_ext4_file(const stdfs::path& image, const std::string& path) {
  if (auto p = image_path_problem(path); !p.empty()) return fail(Errc::invalid_input, "root file system path: " + p);
  Scratch out(image);
  ToolRun r = FLEET_TRY(run_tool({"debugfs", "-R", "cat /" + path, image.string()}, out.path));
  // debugfs exits 0 whatever its request did; a missing file is a message on stderr.
  if (r.messages.find("File not found") != std::string::npos) return std::nullopt;
  if (r.exit_code != 0 || r.messages.find("Bad magic number") != std::string::npos) {
    return fail(Errc::io, "cannot read " + path + " from the ext4 image " + image.string() + ": " + r.messages);
  }
  return FLEET_TRY(fs::read_file(out.path));
}

}  // namespace fleet::sim::disk
