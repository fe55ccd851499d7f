#pragma once
// `fleetctl model push FILE`: one file onto every selected board, peer to peer.
//
// The controller hashes the file (sha256, and the torrent's SHA-256 pieces), makes a CA for
// this push alone and a certificate from it for itself and for each board, and seeds. Over
// SSH each board is inspected first (does it hold the file already? is there room?), gets
// fleet-model (and the libtorrent it links) if it lacks them, its certificate, and then runs
// `fleet-model fetch`, whose JSON lines come back over that SSH channel. Every board dials
// the controller and the boards that started before it; a board that starts is announced
// to those already running (a `peer` line on their stdin), so every pair is connected once.
// When every board is complete (or failed), their stdin is closed and they stop serving.
//
// Nothing here is a tracker: the controller knows the boards from the inventory and tells
// them about each other.
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <iosfwd>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "controller/ssh/ssh.hpp"

namespace fleet::model {

enum class BoardTools : std::uint8_t { copy, installed };

struct PushOptions {
  std::filesystem::path file;
  std::filesystem::path inventory;
  std::string limit = "all";
  std::string dest = "/var/lib/fleet/models";  // the models folder on each board
  std::int64_t max_rate = 0;        // the controller's upload, bytes/s (0: none)
  std::int64_t board_max_rate = 0;  // each board's upload and download, bytes/s (0: none)
  std::filesystem::path state_db;
  // Where the boards' fleet-model comes from: copied from board_tools (DIR/ARCH/bin/fleet-model
  // and DIR/ARCH/lib/fleet-model/*.so* for each `uname -m`, aarch64 or x86_64) to a board
  // that lacks it, or each board's installed one (the fleet-model package's, on its PATH),
  // which must say it is `version`.
  BoardTools tools = BoardTools::copy;
  std::filesystem::path board_tools;
  std::string version;
  std::string listen = "0.0.0.0:0";  // the controller's swarm port (TLS)
  std::string advertise;             // the IP address boards dial for it ("": this end of each board's SSH connection)
  ssh::HostKeys host_keys = ssh::HostKeys::strict;
  std::filesystem::path known_hosts;
  int forks = 8;                                  // boards set up at once over SSH
  std::chrono::seconds timeout{6 * 3600};         // the whole transfer
  bool live = false;                              // a terminal: one progress line, redrawn
  bool direct = false;  // boards fetch from the controller only (a direct push, to measure against)
};

enum class BoardOutcome : std::uint8_t { complete, held, no_room, failed, unreachable };
// Whether `fleet-model --version` printed `version` ("fleet-model 0.1.0 (commit ...)"). Pure.
Result<void> check_tool_version(std::string_view said, const std::string& version);

const char* outcome_name(BoardOutcome o);

struct BoardResult {
  std::string board;
  BoardOutcome outcome = BoardOutcome::failed;
  std::string message;
  double seconds = 0;  // from its fetch's start to complete
  std::int64_t fetched = 0;  // payload bytes it took from peers (less than the size after a cut-off push)
};

struct PushSummary {
  std::string id;
  std::string name;
  std::string sha256;
  std::int64_t size = 0;
  double seconds = 0;                 // the transfer, from the first fetch to the last complete
  std::int64_t controller_sent = 0;   // payload bytes the controller uploaded
  std::vector<BoardResult> boards;
  int failed() const;
};

Result<PushSummary> run_push(const PushOptions& options, std::ostream& out);

// One progress line for the whole fleet. Pure.
struct FleetProgress {
  std::int64_t done = 0, total = 0;  // verified bytes over all fetching boards
  std::int64_t rate = 0;             // bytes/s into the boards
  int complete = 0, boards = 0;
  std::string slowest;               // the board with the least verified
  double slowest_share = 0;
};
std::string progress_line(const FleetProgress& p);

// "100M", "1.5G", "250000" (bytes) to bytes; errors name `what`. Pure.
Result<std::int64_t> parse_bytes(const std::string& text, const std::string& what);

}  // namespace fleet::model
