// choose_boot (sim/firmware): the Pi 5 firmware's reading of config.txt and tryboot.txt,
// over a boot partition written in the input as `head` prints files:
//   ==> config.txt <==
//   os_prefix=slot-b/
//   ==> slot-b/kernel_2712.img <==
// (text before the first header is ignored). Tried with and without the tryboot flag: a
// Result and no crash; a choice names a kernel that exists, and a one-line command line.
#include <map>
#include <string>

#include "sim/firmware.hpp"
#include "tests/fuzz/fuzz.hpp"

using namespace fleet;

namespace {

std::map<std::string, std::string> partition(std::string_view text) {
  constexpr std::string_view k_open = "==> ", k_close = " <==";
  std::map<std::string, std::string> files;
  std::string* current = nullptr;
  while (!text.empty()) {
    const size_t nl = text.find('\n');
    const std::string_view line = text.substr(0, nl == std::string_view::npos ? text.size() : nl + 1);
    text.remove_prefix(line.size());
    std::string_view bare = line;
    if (bare.ends_with('\n')) bare.remove_suffix(1);
    if (bare.starts_with(k_open) && bare.ends_with(k_close) && bare.size() >= k_open.size() + k_close.size()) {
      current = &files[std::string(bare.substr(k_open.size(), bare.size() - k_open.size() - k_close.size()))];
    } else if (current) {
      current->append(line);
    }
  }
  return files;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
  const auto files = partition(fuzz::as_text(data, size));
  const sim::BootFileReader read = [&](const std::string& path) -> std::optional<std::string> {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  };
  for (bool tryboot : {false, true}) {
    auto c = sim::choose_boot(read, tryboot);
    if (!c) continue;
    if (c->config_file != (tryboot ? "tryboot.txt" : "config.txt"))
      fuzz::broken("the wrong config file", c->config_file);
    if (!files.contains(c->kernel)) fuzz::broken("a chosen kernel that is not on the partition", c->kernel);
    if (c->cmdline.find('\n') != std::string::npos) fuzz::broken("a command line of two lines", c->cmdline);
    if (c->fell_back && c->os_prefix.empty()) fuzz::broken("a fall-back without an os_prefix", c->kernel);
  }
  return 0;
}
