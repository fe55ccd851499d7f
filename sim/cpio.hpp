#pragma once
// A writer for the "newc" cpio format the kernel unpacks as its initramfs
// (Documentation/driver-api/early-userspace/buffer-format.rst). Pure: entries in, bytes out.
#include <cstdint>
#include <string>
#include <vector>

namespace fleet::sim {

struct CpioEntry {
  std::string path;     // without a leading '/': "bin/busybox"
  std::uint32_t mode;   // type and permission bits: 0040755 folder, 0100755 executable
  std::string data;     // file contents, or the target of a symlink (mode 0120777)
};

std::string cpio_newc(const std::vector<CpioEntry>& entries);

}  // namespace fleet::sim
