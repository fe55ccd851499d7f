#pragma once
// `fleetctl kernel build`: source -> configured, checked, cross-compiled kernel -> bundle.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/bundle.hpp"
#include "common/error.hpp"
#include "controller/kernel/config_check.hpp"
#include "controller/kernel/profile.hpp"

namespace fleet::kernel {

// Where a long build reports to: a terminal line that redraws, or plain log lines.
class Progress {
 public:
  virtual ~Progress() = default;
  virtual void step(std::string_view what) = 0;                    // a new phase
  virtual void compile(std::string_view what, int done, int expected) = 0;  // one kbuild line
  virtual void note(std::string_view what) = 0;                    // worth telling, not an error
};

struct BuildOptions {
  std::filesystem::path kernel_dir;                 // the repository's kernel/ folder
  std::optional<std::filesystem::path> source_dir;  // --source: a user's kernel tree
  std::filesystem::path out_dir;                    // the bundle (and build.log) go here
  std::filesystem::path cache_dir;                  // extracted sources, build trees, bundles
  int jobs = 1;
  std::string cross_compile = "aarch64-linux-gnu-";
  // Stop after the merged, checked .config (seconds, not the hour a full rpi5 build takes):
  // no compile, no bundle; the .config is written to <out_dir>.config.
  enum class Stop { bundle, config } stop = Stop::bundle;
};

// One requested symbol as the final .config has it.
struct SymbolCheck {
  Requirement wanted;
  std::string actual;             // "n" when absent
  bool ok = false;
  bool optional_missing = false;  // an optional symbol this tree does not define
};

// What the config step checked: every requested symbol, and the contract.
struct ConfigReport {
  std::vector<SymbolCheck> symbols;
  std::vector<std::string> contract_conflicts;  // empty: the .config delivers the contract
  bool ok() const;
};

enum class How { built, from_cache, up_to_date };
const char* how_name(How how);

struct BuildResult {
  std::filesystem::path bundle_dir;
  bundle::Manifest manifest;
  How how = How::built;
  double seconds = 0;
  std::vector<std::string> notes;
  ConfigReport config;                  // filled when this run configured (not from a cache)
  std::filesystem::path config_file;    // Stop::config: where the final .config was written
};

Result<BuildResult> build(const Profile& profile, const BuildOptions& options, Progress& progress);

// The build tree a profile compiles in: one per source tree and base target, shared by the
// profiles that differ only in fragments and release name (rpi5 and rpi5-qemu, the qemu-virt
// variants), so switching between them recompiles what kbuild's per-symbol dependencies say
// changed, not the whole kernel. Pure.
std::filesystem::path build_tree(const std::filesystem::path& cache_dir, std::string_view source_dir,
                                 std::string_view base_target);

// The fragments a profile merges, in order, with their texts (base fragments, shared
// fragments, then the settings fleetctl writes), named as requirements() names them.
Result<std::vector<std::pair<std::string, std::string>>> fragment_texts(const Profile& profile);

// The default cache: $FLEETCTL_CACHE, else $XDG_CACHE_HOME/fleetctl, else ~/.cache/fleetctl.
std::filesystem::path default_cache_dir();

// Content hash that names a build: bundle format, source identity, profile and fragment
// texts, toolchain. Pure.
std::string build_key(std::string_view source_identity, std::string_view profile_text,
                      const std::vector<std::pair<std::string, std::string>>& fragments,
                      std::string_view toolchain);

// Is this make output line a kbuild step ("  CC      kernel/fork.o")? Returns the step.
std::optional<std::string_view> kbuild_step(std::string_view line);

}  // namespace fleet::kernel
