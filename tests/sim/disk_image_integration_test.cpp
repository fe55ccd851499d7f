// A board's disks made and read the real way: mkfs.vfat and mtools for the FAT32 bootfs,
// mkfs.ext4 -d and debugfs for the root, fsck.vfat -n to judge the FAT.
#include <catch2/catch.hpp>

#include <fstream>

#include "common/fs.hpp"
#include "common/process.hpp"
#include "sim/disk_image.hpp"
#include "tests/support/temp_dir.hpp"

using namespace fleet;
using namespace fleet::sim;
using namespace std::chrono_literals;

TEST_CASE("bootfs image: FAT32 labelled bootfs, files read back by path in any case, missing ones are nullopt") {
  test::TempDir dir{"fleet-fat"};
  dir.write("boot/config.txt", "[all]\nos_prefix=fleet-a/\n");
  dir.write("boot/fleet-a/cmdline.txt", "console=ttyAMA0\n");
  std::string kernel(3 * 1024 * 1024 + 17, '\0');
  for (size_t i = 0; i < kernel.size(); ++i) kernel[i] = static_cast<char>(i * 7 + i / 4096);
  dir.write("boot/fleet-a/kernel_2712.img", kernel);
  const auto img = dir / "bootfs.img";
  auto made = disk::make_fat(img, 64, "bootfs", dir / "boot");
  if (!made) FAIL(made.error().message);
  // Sparse: a 64 MiB image takes little room.
  CHECK(std::filesystem::file_size(img) == 64u * 1024 * 1024);
  auto info = process::capture({{"file", "-b", img.string()}, {}, {}, 30s});
  REQUIRE(info);
  CHECK_THAT(*info, Catch::Contains("FAT (32 bit)") && Catch::Contains("bootfs"));

  CHECK(disk::read_fat_file(img, "config.txt").value() == std::optional<std::string>("[all]\nos_prefix=fleet-a/\n"));
  CHECK(disk::read_fat_file(img, "FLEET-A/Kernel_2712.IMG").value() == std::optional<std::string>(kernel));
  CHECK(disk::read_fat_file(img, "tryboot.txt").value() == std::nullopt);
  CHECK(disk::read_fat_file(img, "fleet-a").value() == std::nullopt);  // a folder is not a file
  auto names = disk::list_fat(img).value();
  CHECK(std::find(names.begin(), names.end(), "fleet-a/kernel_2712.img") != names.end());
  CHECK(std::find(names.begin(), names.end(), "fleet-a/") != names.end());

  REQUIRE(disk::write_fat_file(img, "fleet-b/deep/x.txt", "x\n"));
  REQUIRE(disk::write_fat_file(img, "config.txt", "[all]\n"));
  CHECK(disk::read_fat_file(img, "fleet-b/deep/x.txt").value() == std::optional<std::string>("x\n"));
  CHECK(disk::read_fat_file(img, "config.txt").value() == std::optional<std::string>("[all]\n"));
  auto fsck = disk::fsck_fat(img);
  REQUIRE(fsck);
  INFO(fsck->output);
  CHECK(fsck->clean);
  CHECK(fsck->damage.empty());
}

TEST_CASE("bootfs image: a damaged FAT is found by fsck.vfat -n and left as it was") {
  test::TempDir dir{"fleet-fat"};
  dir.write("boot/config.txt", "[all]\n");
  const auto img = dir / "bootfs.img";
  REQUIRE(disk::make_fat(img, 64, "bootfs", dir / "boot"));
  // Both FAT copies start at the reserved sectors (32 of 512 bytes for mkfs.vfat's FAT32);
  // mark cluster 3 (config.txt's first data cluster is 3, after the root's 2) free in the
  // first copy only: the copies now differ and the file's chain is broken.
  const auto before = fs::read_file(img).value().substr(0, 1 << 20);
  {
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(32 * 512 + 3 * 4);
    const char zero[4] = {0, 0, 0, 0};
    f.write(zero, 4);
  }
  const auto damaged = fs::read_file(img).value().substr(0, 1 << 20);
  REQUIRE(damaged != before);
  auto fsck = disk::fsck_fat(img);
  REQUIRE(fsck);
  INFO(fsck->output);
  CHECK_FALSE(fsck->clean);
  CHECK_FALSE(fsck->damage.empty());
  CHECK(fs::read_file(img).value().substr(0, 1 << 20) == damaged);  // -n: nothing changed
}

TEST_CASE("bootfs image: the dirty bit a power cut leaves is not damage") {
  test::TempDir dir{"fleet-fat"};
  dir.write("boot/config.txt", "[all]\n");
  const auto img = dir / "bootfs.img";
  REQUIRE(disk::make_fat(img, 64, "bootfs", dir / "boot"));
  {
    // What Linux writes when it mounts a FAT read-write: byte 0x41 of the boot sector, bit 0.
    std::fstream f(img, std::ios::in | std::ios::out | std::ios::binary);
    f.seekp(0x41);
    f.put(1);
  }
  auto fsck = disk::fsck_fat(img);
  REQUIRE(fsck);
  INFO(fsck->output);
  CHECK_FALSE(fsck->clean);  // fsck.vfat -n exits 1 for it
  CHECK_THAT(fsck->output, Catch::Contains("Dirty bit is set"));
  CHECK(fsck->damage.empty());
}

TEST_CASE("bootfs image: paths that would reach outside or confuse mtools are refused") {
  test::TempDir dir{"fleet-fat"};
  const auto img = dir / "bootfs.img";
  REQUIRE(disk::make_fat(img, 64, "bootfs", {}));
  for (const char* bad : {"", "/config.txt", "../x", "a/../../x", "with space.txt", "quote\".txt", "fleet-*/kernel.img"}) {
    INFO(bad);
    auto r = disk::read_fat_file(img, bad);
    REQUIRE_FALSE(r);
    CHECK(r.error().code == Errc::invalid_input);
  }
  auto again = disk::make_fat(img, 64, "bootfs", {});
  REQUIRE_FALSE(again);
  CHECK_THAT(again.error().message, Catch::Contains("already exists"));
}

TEST_CASE("rootfs image: ext4 labelled rootfs keeps owners, modes and symlinks, debugfs reads a file") {
  test::TempDir dir{"fleet-ext4"};
  dir.write("root/etc/hostname", "pi-1\n");
  dir.write("root/root/.ssh/authorized_keys", "ssh-ed25519 AAAA test\n");
  std::filesystem::permissions(dir / "root/root/.ssh/authorized_keys", std::filesystem::perms(0600));
  std::filesystem::create_symlink("/bin/busybox", dir / "root/etc/sh-link");
  const auto img = dir / "rootfs.img";
  auto made = disk::make_ext4(img, 128, "rootfs", dir / "root");
  if (!made) FAIL(made.error().message);
  auto info = process::capture({{"file", "-b", img.string()}, {}, {}, 30s});
  REQUIRE(info);
  CHECK_THAT(*info, Catch::Contains("ext4") && Catch::Contains("rootfs"));
  CHECK(disk::read_ext4_file(img, "etc/hostname").value() == std::optional<std::string>("pi-1\n"));
  CHECK(disk::read_ext4_file(img, "etc/nothing").value() == std::nullopt);
  auto stat = process::capture({{"debugfs", "-R", "stat /root/.ssh/authorized_keys", img.string()}, {}, {}, 30s});
  REQUIRE(stat);
  CHECK_THAT(*stat, Catch::Contains("Mode:  0600"));
  auto link = process::capture({{"debugfs", "-R", "stat /etc/sh-link", img.string()}, {}, {}, 30s});
  REQUIRE(link);
  CHECK_THAT(*link, Catch::Contains("Type: symlink") && Catch::Contains("/bin/busybox"));
}
