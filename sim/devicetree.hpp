#pragma once
// The device tree a virtual Pi 5 boots with: QEMU's own for the virt machine, plus the node the
// Pi 5 bootloader writes under /chosen (its version, whether this boot was a tryboot), which
// fleet-agent reads as it would on a board.
#include <filesystem>
#include <string>
#include <string_view>

#include "common/bootloader.hpp"
#include "common/error.hpp"
#include "sim/qemu.hpp"

namespace fleet::sim {

// The chosen/bootloader node in dts syntax, every property a u32 but `version` (the real
// node's encodings; raspberrypi/documentation, device tree chosen/bootloader). Pure.
std::string bootloader_node(const bootloader::Info& info, bool tryboot);

// `dts` with `node` added as the last child of /chosen (dts wants properties before
// subnodes). Pure; an error if there is no /chosen (QEMU's virt always has one).
Result<std::string> add_to_chosen(std::string_view dts, std::string_view node);

// QEMU's device tree for exactly this machine (dumped with dumpdtb=, so memory, CPUs, NUMA
// nodes, initrd and command line match), with the bootloader node added, compiled to `out`.
// Runs QEMU once (it exits after the dump) and dtc twice.
Result<void> make_board_dtb(QemuSpec spec, const bootloader::Info& info, bool tryboot, const std::filesystem::path& out);

}  // namespace fleet::sim
