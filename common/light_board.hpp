#pragma once
// A light board (`fleet-sim light`): a board that is a folder on the controller's machine,
// for measuring the controller at 32 or 128 boards without QEMU. fleet-sim runs each board in
// mount and PID namespaces of its own, with sshd chrooted into the folder; the agent there
// runs with / as the board's root. These two paths, relative to that root, are how the two
// sides talk:
//   - the marker, which fleet-sim writes and nothing else does: with it, the agent reads the
//     kernel's view (page size included) from the /proc and /sys files fleet-sim wrote from
//     the booted kernel's contract, and a reboot is a request to fleet-sim, never reboot(2)
//     or systemctl (the machine running the boards must not restart);
//   - the request: "tryboot" or "normal", written by the agent where a real board reboots.
namespace fleet::light {

inline constexpr const char* k_marker = "etc/fleet-agent/light-board";
inline constexpr const char* k_reboot_request = "run/fleet-light/reboot";
// The request's one line: the reboot the agent asked for.
inline constexpr const char* k_request_tryboot = "tryboot";
inline constexpr const char* k_request_normal = "normal";

}  // namespace fleet::light
