#pragma once
// Kernel profiles (kernel/profiles/NAME.yaml): where the source comes from, the base
// config, the tuning fragments, what to build and the contract the booted kernel must meet.
#include <filesystem>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/contract.hpp"
#include "common/error.hpp"

namespace fleet::kernel {

struct SourceSpec {
  std::filesystem::path tarball;  // a release tarball (Debian's linux-source-6.1), or
  std::string git_url;            // a git repository and pinned ref that the user clones
  std::string git_ref;
};

struct Artifacts {
  std::string from;                 // folder in the build tree
  std::vector<std::string> match;   // file name patterns (fnmatch)
};

struct Profile {
  std::string name;
  std::string description;
  std::filesystem::path file;       // where it was read from
  std::vector<std::filesystem::path> files;  // the profiles it extends, then `file`
  SourceSpec source;
  std::string base_target;          // a make target: allnoconfig, bcm2712_defconfig, ...
  std::vector<std::filesystem::path> base_fragments;  // resolved against the kernel/ folder
  std::vector<std::filesystem::path> fragments;       // kernel/fragments/NAME.config
  std::vector<std::string> optional_symbols;
  std::string thp_mode;             // always | madvise
  std::string localversion;
  std::vector<std::string> targets;
  std::string image_from;
  std::string image_name;
  std::optional<Artifacts> dtbs;
  std::optional<Artifacts> overlays;
  std::vector<std::string> cmdline;
  Contract contract;                // kernel_release is filled in by the build
};

// Parses a profile. `file` names it in errors ("rpi5.yaml:12:3: ..."); relative fragment
// paths resolve against `kernel_dir`. Pure: no file is read here. A profile with
// `extends: NAME` is parsed over `parent` (that profile, already parsed): the sections it
// names replace the parent's, `settings` key by key, `extra_fragments` are appended.
Result<Profile> parse_profile(std::string_view yaml_text, const std::filesystem::path& file,
                              const std::filesystem::path& kernel_dir, const Profile* parent = nullptr);

// The profile named by `extends:`, if any. Pure.
Result<std::optional<std::string>> profile_extends(std::string_view yaml_text, const std::filesystem::path& file);

// A name (kernel/profiles/NAME.yaml) or a path to a .yaml file; checks the fragments exist.
Result<Profile> load_profile(std::string_view name_or_path, const std::filesystem::path& kernel_dir);

// Names of the profiles in kernel/profiles.
std::vector<std::string> list_profiles(const std::filesystem::path& kernel_dir);

// The fragment fleetctl writes after the shared ones: the THP default mode, and an empty
// CONFIG_LOCALVERSION (the profile's localversion is passed to make instead).
std::string settings_fragment(const Profile& profile);

}  // namespace fleet::kernel
