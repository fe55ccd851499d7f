#include <catch2/catch.hpp>
#include <sstream>

#include "common/fs.hpp"
#include "controller/kernel/build.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::kernel;

namespace {

class RecordingProgress : public Progress {
 public:
  void step(std::string_view what) override { steps.emplace_back(what); }
  void compile(std::string_view, int, int) override {}
  void note(std::string_view what) override { notes.emplace_back(what); }
  std::vector<std::string> steps, notes;
};

// A copy of the repository's kernel/ folder, so a test can add fragments and profiles.
void copy_kernel_dir(const test::TempDir& dir) {
  std::filesystem::copy(test::source_dir() / "kernel", dir.path(), std::filesystem::copy_options::recursive);
}

BuildOptions options(const test::TempDir& dir) {
  BuildOptions o;
  o.kernel_dir = dir.path();
  o.out_dir = dir / "out";
  o.cache_dir = default_cache_dir();  // shares the extracted Debian tree with other builds
  o.jobs = 2;
  return o;
}

}  // namespace

TEST_CASE("a fragment whose dependency the headless fragment removes fails the build, naming both") {
  test::TempDir dir;
  copy_kernel_dir(dir);
  dir.write("fragments/gpu.config", "# a virtio GPU needs DRM, which headless.config turns off\nCONFIG_DRM_VIRTIO_GPU=y\n");
  auto yaml = fs::read_file(dir / "profiles/qemu-virt.yaml").value();
  yaml.replace(yaml.find("name: qemu-virt"), 15, "name: qemu-virt-gpu-test");
  yaml.replace(yaml.find("fragments: [memory, tick, headless, observability]"), 50,
               "fragments: [memory, tick, headless, observability, gpu]");
  auto file = dir.write("profiles/gpu.yaml", yaml);
  auto profile = load_profile(file.string(), dir.path());
  REQUIRE(profile);

  RecordingProgress progress;
  auto r = build(*profile, options(dir), progress);
  REQUIRE_FALSE(r);
  INFO(r.error().message);
  CHECK(r.error().code == Errc::mismatch);
  CHECK_THAT(r.error().message, Catch::Contains("CONFIG_DRM_VIRTIO_GPU=y was requested (fragments/gpu.config:2)"));
  CHECK_THAT(r.error().message, Catch::Contains("DRM=n"));
  CHECK_THAT(r.error().message, Catch::Contains("build.log"));
  // NUMA_EMU is x86-only in 6.1: a note, not an error.
  bool numa_note = false;
  for (const auto& n : progress.notes) numa_note |= n.find("NUMA_EMU") != std::string::npos;
  CHECK(numa_note);
  // Nothing was published: no bundle where a good one would go.
  CHECK_FALSE(std::filesystem::exists(dir / "out" / "manifest.json"));
  CHECK(std::filesystem::exists(dir / "out.new" / "build.log"));

  INFO("--config-only reports the same failure as its result: every symbol, and the .config kept");
  auto o = options(dir);
  o.stop = BuildOptions::Stop::config;
  auto c = build(*profile, o, progress);
  REQUIRE(c);
  CHECK_FALSE(c->config.ok());
  bool gpu_failed = false;
  for (const auto& s : c->config.symbols) {
    if (s.wanted.symbol == "DRM_VIRTIO_GPU") gpu_failed = !s.ok && s.actual == "n";
    if (s.wanted.symbol == "HZ_100") CHECK(s.ok);
  }
  CHECK(gpu_failed);
  CHECK(std::filesystem::exists(dir.path().string() + "/out.config"));
  CHECK_FALSE(std::filesystem::exists(dir / "out" / "manifest.json"));
}

TEST_CASE("rpi5 without --source explains how to get the tree") {
  test::TempDir dir;
  auto profile = load_profile("rpi5", test::source_dir() / "kernel");
  REQUIRE(profile);
  RecordingProgress progress;
  auto r = build(*profile, options(dir), progress);
  REQUIRE_FALSE(r);
  CHECK(r.error().code == Errc::invalid_input);
  CHECK_THAT(r.error().message, Catch::Contains("git clone --depth 1 --branch rpi-6.12.y"));
  CHECK_THAT(r.error().message, Catch::Contains("--source"));
}

TEST_CASE("a source folder that is not a kernel tree, or lacks the defconfig, is refused") {
  test::TempDir dir;
  auto profile = load_profile("rpi5", test::source_dir() / "kernel");
  REQUIRE(profile);
  auto opt = options(dir);
  opt.source_dir = dir / "empty";
  std::filesystem::create_directories(*opt.source_dir);
  RecordingProgress progress;
  auto r = build(*profile, opt, progress);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("is not a Linux kernel tree"));

  dir.write("fake/Makefile", "");
  std::filesystem::create_directories(dir / "fake/arch/arm64/configs");
  opt.source_dir = dir / "fake";
  r = build(*profile, opt, progress);
  REQUIRE_FALSE(r);
  CHECK_THAT(r.error().message, Catch::Contains("has no arch/arm64/configs/bcm2712_defconfig"));
}
