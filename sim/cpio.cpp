#include "sim/cpio.hpp"

#include <cstdio>

namespace fleet::sim {
namespace {

void pad4(std::string& out) {
  while (out.size() % 4 != 0) out.push_back('\0');
}

void header(std::string& out, std::uint32_t ino, std::uint32_t mode, std::uint32_t nlink, std::uint32_t filesize,
            const std::string& name) {
  char buf[111];
  // magic, ino, mode, uid, gid, nlink, mtime, filesize, devmajor, devminor, rdevmajor,
  // rdevminor, namesize, check: 13 fields of 8 hex digits after the 6-byte magic.
  std::snprintf(buf, sizeof buf, "070701%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X%08X", ino, mode, 0u, 0u,
                nlink, 0u, filesize, 0u, 0u, 0u, 0u, static_cast<std::uint32_t>(name.size() + 1), 0u);
  out.append(buf, 110);
  out.append(name);
  out.push_back('\0');
  pad4(out);
}

}  // namespace

std::string cpio_newc(const std::vector<CpioEntry>& entries) {
  std::string out;
  std::uint32_t ino = 1;
  for (const auto& e : entries) {
    bool dir = (e.mode & 0170000) == 0040000;
    header(out, ino++, e.mode, dir ? 2 : 1, dir ? 0 : static_cast<std::uint32_t>(e.data.size()), e.path);
    if (!dir) {
      out.append(e.data);
      pad4(out);
    }
  }
  header(out, 0, 0, 1, 0, "TRAILER!!!");
  return out;
}

}  // namespace fleet::sim
