#include "node-agent/lifecycle/system.hpp"

#include <linux/reboot.h>
#include <sys/syscall.h>
#include <unistd.h>

#include <cerrno>
#include <chrono>
#include <cstring>

#include "common/fs.hpp"

namespace fleet::agent {

std::string RealSystem::running_release() {
  auto r = fs::read_file(root_ / "proc/sys/kernel/osrelease").value_or("");
  while (!r.empty() && (r.back() == '\n' || r.back() == ' ')) r.pop_back();
  return r;
}

Report RealSystem::verify(const Contract& contract) {
  return evaluate(contract, observe(root_, root_ == "/" ? Source::live : Source::folder));
}

Result<void> RealSystem::reboot(RebootMode mode) {
  ::sync();
  long rc = 0;
  if (mode == RebootMode::tryboot) {
    // The Pi 5 firmware's one-shot flag: the next boot reads tryboot.txt, once. The kernel
    // prints "reboot: Restarting system with command '0 tryboot'" (kernel/reboot.c).
    static char arg[] = "0 tryboot";
    rc = ::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART2, arg);
  } else {
    rc = ::syscall(SYS_reboot, LINUX_REBOOT_MAGIC1, LINUX_REBOOT_MAGIC2, LINUX_REBOOT_CMD_RESTART, nullptr);
  }
  return fail(Errc::io, std::string("reboot(2) returned ") + std::to_string(rc) + ": " + std::strerror(errno));
}

std::int64_t RealSystem::now_ms() {
  return std::chrono::duration_cast<std::chrono::milliseconds>(std::chrono::system_clock::now().time_since_epoch())
      .count();
}

}  // namespace fleet::agent
