#pragma once
// `fleetctl rollout`: a bundle across the boards an inventory selects, in waves, with a
// failure gate, its state in SQLite, reports collected over gRPC.
#include <chrono>
#include <filesystem>
#include <iosfwd>
#include <optional>
#include <string>

#include "common/error.hpp"
#include "controller/inventory/inventory.hpp"
#include "controller/rollout/engine.hpp"
#include "controller/ssh/ssh.hpp"

namespace fleet::rollout {

struct RolloutOptions {
  std::filesystem::path bundle;
  std::filesystem::path inventory;
  std::string limit = "all";
  std::string serial = "1,100%";  // a canary, then everyone
  std::string max_fail = "0%";
  int forks = 5;                      // boards in SSH work at once (a rebooting board holds none)
  bool prestage = true;               // push the next wave's bundle while a wave is on trial
  bool dry_run = false;
  std::optional<std::string> resume;  // a rollout id
  std::filesystem::path state_db;
  std::filesystem::path agent;        // static aarch64 fleet-agent to push
  std::string listen = "0.0.0.0:50051";
  std::string report_address;         // what boards dial; default: this host's listen port
  ssh::HostKeys host_keys = ssh::HostKeys::strict;
  std::filesystem::path known_hosts;
  std::filesystem::path work_dir;     // bundle tars
  // An Ed25519 public key (PEM): the bundle must carry its signature, and every board is
  // told to trust it (fleet-agent setup --trust-key) before the bundle is pushed.
  std::optional<std::filesystem::path> trust_key;
  Timeouts timeouts;
  bool live = false;                  // a terminal: redraw a board table instead of printing lines
};

struct RolloutSummary {
  std::string id;
  RolloutState state = RolloutState::done;
  int committed = 0, skipped = 0, failed = 0, not_started = 0;
};

Result<RolloutSummary> run_rollout(const RolloutOptions& options, std::ostream& out);

// Why a board's agent would refuse the bundle ("" if it would not): the board trusts
// `board_keys` (plus `added_key`, which this rollout gives it), and the bundle is signed by
// `bundle_signer` ("" if unsigned). For --dry-run. Pure.
std::string signature_refusal(const std::vector<std::string>& board_keys, const std::string& bundle_signer,
                              const std::string& added_key);

// fleet_group and fleet_group_max_down of a host (boards that serve one model together):
// the group ("" none) and how many of it may be changed at once (default 1). Errors name the
// host and where the inventory mentions it. Pure.
Result<std::pair<std::string, int>> board_group(const inventory::Host& host);

// After the verdicts: waits (polling the store every `poll`, at most `limit`) until each
// board's agent report of its verdict, numbered `sequence`, was accepted for `rollout_id`.
// Says on `out` whom it waits for, and names each board whose report did not come; returns
// those. The verdicts stand either way: they were seen over SSH.
Result<std::vector<ReportDue>> await_reports(store::Store& store, const std::string& rollout_id,
                                             const std::vector<ReportDue>& due, std::chrono::milliseconds limit,
                                             std::ostream& out,
                                             std::chrono::milliseconds poll = std::chrono::milliseconds(100));

struct RollbackOptions {
  std::filesystem::path inventory;
  std::optional<std::string> rollout;  // the boards this rollout committed, or
  std::optional<std::string> limit;    // the boards a host pattern selects
  int forks = 5;
  std::filesystem::path state_db;
  ssh::HostKeys host_keys = ssh::HostKeys::strict;
  std::filesystem::path known_hosts;
  Timeouts timeouts;
};

// Returns boards to their previous committed kernel (fleet-agent rollback), proving each
// reboot by a new boot_id; recorded in the state database like a rollout.
Result<RolloutSummary> run_rollback(const RollbackOptions& options, std::ostream& out);

}  // namespace fleet::rollout
