// What a bundle, a state file or a command line can send that must not brick a board:
// one row per input seen to do harm (issue 10), run through the real fleet-agent binary
// with a time bound (a FIFO must not hang the test), each expecting a refusal that names
// the field or file, and a board folder byte-for-byte as it was before.
#include <sys/stat.h>
#include <sys/sysmacros.h>
#include <unistd.h>

#include <catch2/catch.hpp>
#include <functional>
#include <map>
#include <nlohmann/json.hpp>

#include "common/bundle.hpp"
#include "common/fs.hpp"
#include "common/hash.hpp"
#include "common/process.hpp"
#include "common/signing.hpp"
#include "controller/tls/authority.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
namespace stdfs = std::filesystem;

namespace {

// A folder shaped like a board that ran `fleet-agent setup`: a Pi boot partition, a running
// kernel, the agent's state folder and lock.
void write_board(const test::TempDir& root) {
  root.write("boot/firmware/config.txt", "[all]\nkernel=kernel_2712.img\n");
  root.write("boot/firmware/cmdline.txt", "console=ttyAMA0 root=/dev/mmcblk0p2\n");
  root.write("boot/firmware/kernel_2712.img", "stock kernel");
  root.write("proc/sys/kernel/osrelease", "6.1.0-stock\n");
  root.write("etc/hostname", "pi-1\n");
  root.write("lib/modules/6.1.0-stock/modules.dep", "");
  root.write("var/lib/fleet-agent/lock", "");
}

// Every entry under root, not following links: type, mode and content hash.
std::map<std::string, std::string> snapshot(const stdfs::path& root) {
  std::map<std::string, std::string> out;
  for (auto it = stdfs::recursive_directory_iterator(root); it != stdfs::recursive_directory_iterator(); ++it) {
    struct ::stat st {};
    REQUIRE(::lstat(it->path().c_str(), &st) == 0);
    std::string v = std::to_string(st.st_mode);
    if (S_ISREG(st.st_mode)) v += " " + hash::sha256_hex(*fs::read_file(it->path()));
    out[it->path().lexically_relative(root).string()] = v;
  }
  return out;
}

std::string sha(const stdfs::path& p) { return hash::sha256_hex(*fs::read_file(p)); }

// A good bundle, then the row's change to it.
stdfs::path write_bundle(const test::TempDir& dir) {
  dir.write("b/boot/kernel_2712.img", "kernel");
  dir.write("b/boot/overlays/bcm2712d0.dtbo", "overlay");
  dir.write("b/modules/lib/modules/6.1-new/kernel/dummy.ko", "ko");
  dir.write("b/contract.json",
            R"({"kernel_release":"6.1-new","page_size":16384,"thp":"madvise","numa_nodes":2,"hz":100,"tick":"NO_HZ_IDLE","headless":true})");
  bundle::Manifest m;
  m.profile = "test";
  m.kernel_release = "6.1-new";
  m.build_key = std::string(64, 'a');
  m.image = "boot/kernel_2712.img";
  m.cmdline_extra = {"quiet"};
  REQUIRE(bundle::hash_tree(dir / "b", m));
  REQUIRE(fs::write_file_atomic(dir / "b" / bundle::k_manifest, bundle::manifest_to_json(m)));
  return dir / "b";
}

// Rewrites one manifest field as an attacker would (files keep their true hashes).
void set_manifest(const stdfs::path& b, const std::string& field, const nlohmann::json& value) {
  auto j = nlohmann::json::parse(*fs::read_file(b / bundle::k_manifest));
  if (field.starts_with("files.")) {
    j["files"][field.substr(6)] = value;
  } else {
    j[field] = value;
  }
  REQUIRE(fs::write_file_atomic(b / bundle::k_manifest, j.dump()));
}

struct Row {
  const char* name;
  // Changes the bundle (or the board) before the command runs; returns false to skip the
  // row (with the reason in `skip`).
  std::function<bool(const stdfs::path& bundle, const test::TempDir& board, std::string& skip)> prepare;
  std::vector<std::string> command;  // after fleet-agent; BUNDLE and ROOT are replaced
  int exit_code;
  const char* expect;  // in stderr: the field or file named
};

bool mknod_char(const stdfs::path& p, std::string& skip) {
  if (::mknod(p.c_str(), S_IFCHR | 0644, ::makedev(1, 5)) != 0) {
    skip = "mknod needs CAP_MKNOD (run as root)";
    return false;
  }
  return true;
}

}  // namespace

TEST_CASE("fleet-agent refuses what would brick a board and leaves the board folder byte-for-byte the same") {
  auto key = signing::generate();
  REQUIRE(key);
  const std::vector<std::string> install = {"install", "--root", "ROOT", "--bundle", "BUNDLE"};
  const Row rows[] = {
      {"build_key like /../././. (emptied the boot partition)",
       [](auto& b, auto&, auto&) {
         set_manifest(b, "build_key", "/../././././././././././././././././././././././././././././././");
         return true;
       },
       install, 2, "field 'build_key'"},
      // A Pi 5 EEPROM from before 2024-05-13: its tryboot is not trusted (rpi-eeprom #575).
      {"a bootloader older than 2024-05-13 in the device tree",
       [](auto&, auto& board, auto&) {
         board.write("proc/device-tree/chosen/bootloader/build-timestamp", std::string("\x66\x23\x05\x80", 4));
         return true;
       },
       install, 1, "older than 2024-05-13"},
      {"a bootloader property of the wrong size",
       [](auto&, auto& board, auto&) {
         board.write("proc/device-tree/chosen/bootloader/tryboot", std::string("\x00\x01", 2));
         return true;
       },
       install, 1, "chosen/bootloader/tryboot: 2 bytes"},
      {"kernel_release ../../etc (replaced the board's /etc)",
       [](auto& b, auto&, auto&) {
         set_manifest(b, "kernel_release", "../../etc");
         return true;
       },
       install, 2, "field 'kernel_release'"},
      {"kernel_release /some/abs/path (removed by boot-check)",
       [](auto& b, auto&, auto&) {
         set_manifest(b, "kernel_release", "/some/abs/path");
         return true;
       },
       install, 2, "field 'kernel_release'"},
      {"a cmdline_extra word holding a newline",
       [](auto& b, auto&, auto&) {
         set_manifest(b, "cmdline_extra", {"quiet\ninit=/bin/sh"});
         return true;
       },
       install, 2, "field 'cmdline_extra'"},
      {"an image outside boot/",
       [](auto& b, auto&, auto&) {
         set_manifest(b, "image", "contract.json");
         return true;
       },
       install, 2, "field 'image'"},
      {"a file path leaving the bundle",
       [](auto& b, auto&, auto&) {
         set_manifest(b, "files.boot/../../x", {{"sha256", std::string(64, 'b')}, {"size", 1}});
         return true;
       },
       install, 2, "'..' component"},
      {"a FIFO in boot/ (install hung forever)",
       [](auto& b, auto&, auto&) { return ::mkfifo((b / "boot/fifo").c_str(), 0644) == 0; }, install, 2,
       "boot/fifo is a FIFO"},
      {"a FIFO as manifest.json",
       [](auto& b, auto&, auto&) {
         stdfs::remove(b / bundle::k_manifest);
         return ::mkfifo((b / bundle::k_manifest).c_str(), 0644) == 0;
       },
       install, 2, "manifest.json is a FIFO"},
      {"a character device (1,5) in boot/ (512 MiB written past the free-space check)",
       [](auto& b, auto&, std::string& skip) { return mknod_char(b / "boot/zero", skip); }, install, 2,
       "boot/zero is a character device"},
      {"a device node added to a signed bundle",
       [&](auto& b, auto& board, std::string& skip) {
         REQUIRE(bundle::sign(b, key->private_pem, "release.pem"));
         board.write("etc/fleet-agent/trusted-keys/" + key->id + ".pem", key->public_pem);
         return mknod_char(b / "modules/lib/modules/6.1-new/kernel/zero", skip);
       },
       install, 2, "is a character device"},
      {"a FIFO added to a signed bundle (needs no privilege: the same path as a device)",
       [&](auto& b, auto& board, auto&) {
         REQUIRE(bundle::sign(b, key->private_pem, "release.pem"));
         board.write("etc/fleet-agent/trusted-keys/" + key->id + ".pem", key->public_pem);
         return ::mkfifo((b / "boot/overlays/fifo").c_str(), 0644) == 0;
       },
       install, 2, "boot/overlays/fifo is a FIFO"},
      {"a symlink in boot/",
       [](auto& b, auto&, auto&) {
         stdfs::create_symlink("/etc/shadow", b / "boot/link");
         return true;
       },
       install, 2, "boot/link is a symlink"},
      {"a hard link to a file outside the bundle",
       [](auto& b, auto& board, auto&) {
         return ::link((board / "etc/hostname").c_str(), (b / "boot/hostname").c_str()) == 0;
       },
       install, 2, "hard links"},
      {"a setuid module",
       [](auto& b, auto&, auto&) {
         return ::chmod((b / "modules/lib/modules/6.1-new/kernel/dummy.ko").c_str(), 04755) == 0;
       },
       install, 2, "setuid"},
      {"a file changed after the manifest",
       [](auto& b, auto&, auto&) {
         REQUIRE(fs::write_file_atomic(b / "boot/kernel_2712.img", "kernek"));  // same size: the sha256 tells
         return true;
       },
       install, 1, "boot/kernel_2712.img does not match its sha256"},
      {"a file grown after the manifest (refused by its size, before it is read)",
       [](auto& b, auto&, auto&) {
         REQUIRE(fs::write_file_atomic(b / "boot/kernel_2712.img", std::string(1 << 20, 'k')));
         return true;
       },
       install, 1, "boot/kernel_2712.img is 1048576 bytes, the manifest says 6"},
      {"tryboot with --root (called the machine's reboot(2))", [](auto&, auto&, auto&) { return true; },
       {"tryboot", "--root", "ROOT"}, 2, "a reboot here would restart this machine"},
      {"rollback with --root", [](auto&, auto&, auto&) { return true; }, {"rollback", "--root", "ROOT"}, 2,
       "a reboot here would restart this machine"},
      {"a state file naming ../../etc as the slot on trial",
       [](auto&, auto& board, auto&) {
         board.write("var/lib/fleet-agent/state.json",
                     R"({"state":"tryboot","committed":{"name":"","release":"6.1.0-stock"},"target":{"slot":{"name":"../../etc","release":"6.1-new"},"build_key":")" +
                         std::string(64, 'a') + R"(","rollout_id":"r"}})");
         return true;
       },
       {"boot-check", "--root", "ROOT"}, 1, "slot name '../../etc'"},
      {"a state file naming an absolute release",
       [](auto&, auto& board, auto&) {
         board.write("var/lib/fleet-agent/state.json",
                     R"({"state":"verify_failed","committed":{"name":"","release":"6.1.0-stock"},"target":{"slot":{"name":"fleet-aaaaaaaaaaaa","release":"/some/abs/path"},"build_key":")" +
                         std::string(64, 'a') + R"(","rollout_id":"r"}})");
         return true;
       },
       {"boot-check", "--root", "ROOT"}, 1, "release '/some/abs/path'"},
  };
  for (const auto& row : rows) {
    DYNAMIC_SECTION(row.name) {
      test::TempDir board{"fleet-board"}, work;
      write_board(board);
      const auto b = write_bundle(work);
      std::string skip;
      if (!row.prepare(b, board, skip)) {
        WARN("skipped: " << skip);
        continue;
      }
      const auto before = snapshot(board.path());
      const auto bundle_before = sha(work.path() / "b/boot/kernel_2712.img");
      std::vector<std::string> argv = {FLEET_HOST_AGENT};
      for (auto w : row.command) argv.push_back(w == "ROOT" ? board.path().string() : w == "BUNDLE" ? b.string() : w);
      std::string output;
      auto r = process::run({argv, {}, {}, std::chrono::seconds(20)}, [&](std::string_view l) {
        output += std::string(l) + "\n";
      });
      REQUIRE(r);
      INFO(output);
      CHECK_FALSE(r->timed_out);
      CHECK(r->exit_code == row.exit_code);
      CHECK_THAT(output, Catch::Contains(row.expect));
      CHECK(output.find("installed:") == std::string::npos);
      CHECK(snapshot(board.path()) == before);
      CHECK(sha(work.path() / "b/boot/kernel_2712.img") == bundle_before);
    }
  }
}

TEST_CASE("fleet-agent setup writes agent.json 0600") {
  test::TempDir board{"fleet-board"};
  write_board(board);
  std::string output;
  test::TempDir controller;
  const auto ca = tls::Authority::open_or_create(controller / "tls").value();
  auto r = process::run({{FLEET_HOST_AGENT, "setup", "--root", board.path().string(), "--board-id", "pi-1",
                          "--controller", "10.0.2.2:50051", "--token", "secret", "--ca",
                          ca.certificate_file().string()},
                         {}, {}, std::chrono::seconds(20)},
                        [&](std::string_view l) { output += std::string(l) + "\n"; });
  REQUIRE(r);
  INFO(output);
  REQUIRE(r->exit_code == 0);
  struct ::stat st {};
  REQUIRE(::stat((board / "etc/fleet-agent/agent.json").c_str(), &st) == 0);
  CHECK((st.st_mode & 0777) == 0600);
}
