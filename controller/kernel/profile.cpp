#include "controller/kernel/profile.hpp"

#include "common/text.hpp"

#include <yaml-cpp/yaml.h>

#include <algorithm>
#include <set>

#include "common/fs.hpp"
#include "controller/yaml/load.hpp"
#include "controller/yaml/where.hpp"

namespace fleet::kernel {
namespace {

using Ctx = yaml::Where;
using yaml::bad;

Result<std::string> get_string(const Ctx& c, const YAML::Node& parent, const std::string& key, bool required) {
  YAML::Node n = parent[key];
  if (!n) {
    if (required) return bad(c, parent, "missing field '" + key + "'");
    return std::string();
  }
  if (!n.IsScalar()) return bad(c, n, "field '" + key + "' must be a string");
  return n.as<std::string>();
}

Result<std::vector<std::string>> get_list(const Ctx& c, const YAML::Node& parent, const std::string& key) {
  std::vector<std::string> out;
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return out;
  if (!n.IsSequence()) return bad(c, n, "field '" + key + "' must be a list");
  for (const auto& item : n) {
    if (!item.IsScalar()) return bad(c, item, "items of '" + key + "' must be strings");
    out.push_back(item.as<std::string>());
  }
  return out;
}

Result<void> check_keys(const Ctx& c, const YAML::Node& map, const std::set<std::string>& allowed) {
  for (const auto& kv : map) {
    // A map or list as a key ("? thp_mode: madvise") threw yaml-cpp's bad conversion out of
    // parse_profile (found by tests/fuzz/profile_fuzz).
    if (!kv.first.IsScalar()) return bad(c, kv.first, "a key must be a plain name, not a map or list");
    auto key = kv.first.as<std::string>();
    if (!allowed.contains(key)) {
      std::string list;
      for (const auto& a : allowed) list += (list.empty() ? "" : ", ") + a;
      return bad(c, kv.first, "unknown field '" + key + "' (known: " + list + ")");
    }
  }
  return {};
}

Result<std::optional<Artifacts>> get_artifacts(const Ctx& c, const YAML::Node& parent, const std::string& key) {
  YAML::Node n = parent[key];
  if (!n || n.IsNull()) return std::optional<Artifacts>();
  if (!n.IsMap()) return bad(c, n, "field '" + key + "' must be a map with 'from' and 'match'");
  FLEET_TRY(check_keys(c, n, {"from", "match"}));
  Artifacts a;
  a.from = FLEET_TRY(get_string(c, n, "from", true));
  a.match = FLEET_TRY(get_list(c, n, "match"));
  if (a.match.empty()) return bad(c, n, "field '" + key + ".match' needs at least one pattern");
  return std::optional<Artifacts>(a);
}

Result<std::optional<int>> get_int(const Ctx& c, const YAML::Node& parent, const std::string& key) {
  YAML::Node n = parent[key];
  if (!n) return std::optional<int>();
  try {
    return std::optional<int>(n.as<int>());
  } catch (const YAML::Exception&) {
    return bad(c, n, "field '" + key + "' must be an integer");
  }
}

Result<Contract> get_contract(const Ctx& c, const YAML::Node& n) {
  if (!n || !n.IsMap()) return bad(c, n, "missing map 'contract' (what the booted kernel must show)");
  FLEET_TRY(check_keys(c, n, {"page_size", "thp", "numa_nodes", "numa_nodes_min", "numa_emulation", "hz", "tick",
                                "headless"}));
  Contract k;
  if (auto v = FLEET_TRY(get_int(c, n, "page_size"))) k.page_size = *v;
  if (n["thp"]) k.thp = FLEET_TRY(get_string(c, n, "thp", true));
  k.numa_nodes = FLEET_TRY(get_int(c, n, "numa_nodes"));
  k.numa_nodes_min = FLEET_TRY(get_int(c, n, "numa_nodes_min"));
  if (n["numa_emulation"]) {
    try {
      k.numa_emulation = n["numa_emulation"].as<bool>();
    } catch (const YAML::Exception&) {
      return bad(c, n["numa_emulation"], "field 'numa_emulation' must be true or false");
    }
  }
  k.hz = FLEET_TRY(get_int(c, n, "hz"));
  if (n["tick"]) k.tick = FLEET_TRY(get_string(c, n, "tick", true));
  if (n["headless"]) {
    try {
      k.headless = n["headless"].as<bool>();
    } catch (const YAML::Exception&) {
      return bad(c, n["headless"], "field 'headless' must be true or false");
    }
  }
  // The agent's parser is the single judge of what a valid contract is.
  auto checked = parse_contract(contract_to_json(k), c.at(n));
  if (!checked) return std::unexpected(checked.error());
  return k;
}

Result<Profile> parse_yaml(const Ctx& c, std::string_view yaml_text, const std::filesystem::path& file,
                           const std::filesystem::path& kernel_dir, const Profile* parent) {
  YAML::Node root = FLEET_TRY(yaml::load(yaml_text, c, {.key_noun = "field"}));
  if (!root.IsMap()) return fail(Errc::invalid_input, c.file + ": a profile is a YAML map");
  FLEET_TRY(check_keys(c, root, {"name", "description", "source", "base", "fragments", "optional_symbols",
                                 "settings", "build", "cmdline", "contract", "extends", "extra_fragments"}));
  // A profile that extends another starts as a copy of it; each section it names replaces
  // the parent's (settings key by key), and extra_fragments are added after the fragments.
  Profile p = parent ? *parent : Profile{};
  p.file = file;
  p.files.push_back(file);
  p.name = FLEET_TRY(get_string(c, root, "name", true));
  // The name becomes folder names (build/bundles/NAME, kernel diff's work folders).
  if (p.name.empty() || p.name.front() == '.' || p.name.size() > 64 ||
      p.name.find_first_not_of("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789._-") != std::string::npos) {
    return bad(c, root["name"], "name must be letters, digits, '.', '_' or '-' (at most 64, not starting with '.')");
  }
  if (parent && p.name == parent->name) return bad(c, root["name"], "a profile cannot have the name of the one it extends");
  if (root["extends"] && !parent) return bad(c, root["extends"], "'extends' is resolved by load_profile, which reads the other profile");
  if (root["description"] || !parent) p.description = FLEET_TRY(get_string(c, root, "description", false));

  if (root["source"] || !parent) {
  p.source = {};
  YAML::Node src = root["source"];
  if (!src || !src.IsMap()) return bad(c, root, "missing map 'source' (tarball, or git and ref)");
  FLEET_TRY(check_keys(c, src, {"tarball", "git", "ref"}));
  p.source.tarball = FLEET_TRY(get_string(c, src, "tarball", false));
  p.source.git_url = FLEET_TRY(get_string(c, src, "git", false));
  p.source.git_ref = FLEET_TRY(get_string(c, src, "ref", false));
  if (p.source.tarball.empty() == p.source.git_url.empty()) {
    return bad(c, src, "source needs exactly one of 'tarball' or 'git'");
  }
  if (!p.source.git_url.empty() && p.source.git_ref.empty()) return bad(c, src, "a git source needs a pinned 'ref'");
  }

  if (root["base"] || !parent) {
  p.base_fragments.clear();
  YAML::Node base = root["base"];
  if (!base || !base.IsMap()) return bad(c, root, "missing map 'base' (target, fragments)");
  FLEET_TRY(check_keys(c, base, {"target", "fragments"}));
  p.base_target = FLEET_TRY(get_string(c, base, "target", true));
  if (!(p.base_target.ends_with("config"))) {
    return bad(c, base["target"], "base.target must be a config target such as allnoconfig or bcm2712_defconfig");
  }
  for (const auto& f : FLEET_TRY(get_list(c, base, "fragments"))) p.base_fragments.push_back(kernel_dir / f);
  }

  for (const char* key : {"fragments", "extra_fragments"}) {
    if (std::string_view(key) == "fragments" && (root[key] || !parent)) p.fragments.clear();
    for (const auto& f : FLEET_TRY(get_list(c, root, key))) {
      if (f.find('/') != std::string::npos) return bad(c, root[key], "fragment names have no '/': " + f);
      p.fragments.push_back(kernel_dir / "fragments" / (f + ".config"));
    }
  }
  if (root["optional_symbols"] || !parent) p.optional_symbols = FLEET_TRY(get_list(c, root, "optional_symbols"));

  YAML::Node settings = root["settings"];
  if (settings || !parent) {
  if (!settings || !settings.IsMap()) return bad(c, root, "missing map 'settings' (thp_mode, localversion)");
  FLEET_TRY(check_keys(c, settings, {"thp_mode", "localversion"}));
  if (settings["thp_mode"] || !parent) p.thp_mode = FLEET_TRY(get_string(c, settings, "thp_mode", true));
  if (p.thp_mode != "always" && p.thp_mode != "madvise") {
    return bad(c, settings["thp_mode"], "settings.thp_mode must be always or madvise");
  }
  if (settings["localversion"] || !parent) p.localversion = FLEET_TRY(get_string(c, settings, "localversion", true));
  if (p.localversion.empty() || p.localversion.front() != '-' ||
      p.localversion.find_first_of(" \t\"'/\\") != std::string::npos) {
    return bad(c, settings["localversion"], "settings.localversion must start with '-' and hold no spaces, quotes or slashes");
  }
  }
  if (parent && p.localversion == parent->localversion) {
    return bad(c, settings ? settings : root, "settings.localversion must differ from " + parent->name + "'s (" +
                                                  parent->localversion + "): uname -r is how a board proves which kernel booted");
  }

  if (root["build"] || !parent) {
  YAML::Node build = root["build"];
  if (!build || !build.IsMap()) return bad(c, root, "missing map 'build' (targets, image)");
  FLEET_TRY(check_keys(c, build, {"targets", "image", "dtbs", "overlays"}));
  p.targets = FLEET_TRY(get_list(c, build, "targets"));
  if (p.targets.empty()) return bad(c, build, "build.targets needs at least one make target");
  YAML::Node image = build["image"];
  if (!image || !image.IsMap()) return bad(c, build, "missing map 'build.image' (from, name)");
  FLEET_TRY(check_keys(c, image, {"from", "name"}));
  p.image_from = FLEET_TRY(get_string(c, image, "from", true));
  p.image_name = FLEET_TRY(get_string(c, image, "name", true));
  p.dtbs = FLEET_TRY(get_artifacts(c, build, "dtbs"));
  p.overlays = FLEET_TRY(get_artifacts(c, build, "overlays"));
  }

  if (root["cmdline"] || !parent) p.cmdline = FLEET_TRY(get_list(c, root, "cmdline"));
  // Each becomes a word of the slot's cmdline.txt, checked as the manifest's parser checks it.
  for (std::size_t i = 0; i < p.cmdline.size(); ++i) {
    if (auto why = text::command_word_problem(p.cmdline[i]); !why.empty()) {
      return bad(c, root["cmdline"][i], "cmdline word " + text::quoted(p.cmdline[i]) + " " + why);
    }
  }
  if (root["contract"] || !parent) p.contract = FLEET_TRY(get_contract(c, root["contract"]));
  if (p.contract.thp && *p.contract.thp != p.thp_mode) {
    return bad(c, root["contract"]["thp"], "contract.thp is " + *p.contract.thp + " but settings.thp_mode is " +
                                               p.thp_mode + ": the kernel would fail its own contract");
  }
  return p;
}

}  // namespace

Result<Profile> parse_profile(std::string_view yaml_text, const std::filesystem::path& file,
                              const std::filesystem::path& kernel_dir, const Profile* parent) {
  Ctx c{file.string()};
  // yaml-cpp throws for what its parser accepts but a conversion refuses; whatever a check
  // above misses is still an error naming the file and line, never an exception.
  try {
    return parse_yaml(c, yaml_text, file, kernel_dir, parent);
  } catch (const YAML::Exception& e) {
    return fail(Errc::parse, c.at(e.mark) + ": " + e.msg);
  }
}

Result<std::optional<std::string>> profile_extends(std::string_view yaml_text, const std::filesystem::path& file) {
  Ctx c{file.string()};
  try {
    YAML::Node root = FLEET_TRY(yaml::load(yaml_text, c, {.key_noun = "field"}));
    if (!root.IsMap() || !root["extends"]) return std::optional<std::string>();
    YAML::Node n = root["extends"];
    if (!n.IsScalar()) return bad(c, n, "field 'extends' must be a profile name");
    std::string name = n.as<std::string>();
    if (name.empty() || name.find_first_of("/\\.") != std::string::npos) {
      return bad(c, n, "field 'extends' must be a profile name in kernel/profiles, not " + text::quoted(name));
    }
    return std::optional<std::string>(name);
  } catch (const YAML::Exception& e) {
    return fail(Errc::parse, c.at(e.mark) + ": " + e.msg);
  }
}

namespace {
Result<Profile> load_profile_at(std::string_view name_or_path, const std::filesystem::path& kernel_dir, int depth);
}

Result<Profile> load_profile(std::string_view name_or_path, const std::filesystem::path& kernel_dir) {
  return load_profile_at(name_or_path, kernel_dir, 0);
}

namespace {
Result<Profile> load_profile_at(std::string_view name_or_path, const std::filesystem::path& kernel_dir, int depth) {
  std::filesystem::path file(name_or_path);
  bool is_path = name_or_path.find('/') != std::string_view::npos || file.extension() == ".yaml";
  if (!is_path) file = kernel_dir / "profiles" / (std::string(name_or_path) + ".yaml");
  auto text = fs::read_file(file);
  if (!text) {
    if (text.error().code == Errc::not_found && !is_path) {
      std::string known;
      for (const auto& n : list_profiles(kernel_dir)) known += (known.empty() ? "" : ", ") + n;
      return fail(Errc::not_found, "no kernel profile '" + std::string(name_or_path) + "' in " +
                                       (kernel_dir / "profiles").string() + " (known: " + known + ")");
    }
    return std::unexpected(text.error());
  }
  std::optional<Profile> parent;
  if (auto base = FLEET_TRY(profile_extends(*text, file))) {
    // rpi5-qemu extends rpi5; a chain deeper than this is a cycle or a mistake.
    constexpr int k_max_extends_depth = 4;
    if (depth >= k_max_extends_depth) {
      return fail(Errc::invalid_input, file.string() + ": 'extends' goes deeper than " +
                                           std::to_string(k_max_extends_depth) + " profiles (a cycle?)");
    }
    auto loaded = load_profile_at(*base, kernel_dir, depth + 1);
    if (!loaded) return fail(loaded.error().code, file.string() + ": extends " + *base + ": " + loaded.error().message);
    parent = std::move(*loaded);
  }
  Profile p = FLEET_TRY(parse_profile(*text, file, kernel_dir, parent ? &*parent : nullptr));
  std::vector<std::filesystem::path> all = p.base_fragments;
  all.insert(all.end(), p.fragments.begin(), p.fragments.end());
  for (const auto& f : all) {
    if (!std::filesystem::is_regular_file(f)) {
      return fail(Errc::not_found, file.string() + ": config fragment " + f.string() + " does not exist");
    }
  }
  return p;
}
}  // namespace

std::vector<std::string> list_profiles(const std::filesystem::path& kernel_dir) {
  std::vector<std::string> names;
  std::error_code ec;
  for (const auto& e : std::filesystem::directory_iterator(kernel_dir / "profiles", ec)) {
    if (e.path().extension() == ".yaml") names.push_back(e.path().stem().string());
  }
  std::sort(names.begin(), names.end());
  return names;
}

std::string settings_fragment(const Profile& p) {
  std::string out = "# Written by fleetctl from profile " + p.name + " (settings).\n";
  out += p.thp_mode == "always" ? "CONFIG_TRANSPARENT_HUGEPAGE_ALWAYS=y\n" : "CONFIG_TRANSPARENT_HUGEPAGE_MADVISE=y\n";
  // The release suffix goes on make's command line (LOCALVERSION=), not into the config:
  // profiles that differ only in it share one .config, so ccache serves them all and a
  // second kernel release costs a relink, not a rebuild.
  out += "CONFIG_LOCALVERSION=\"\"\n";
  out += "# CONFIG_LOCALVERSION_AUTO is not set\n";
  return out;
}

}  // namespace fleet::kernel
