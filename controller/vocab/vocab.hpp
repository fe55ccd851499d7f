#pragma once
// The words of a rollout, as types: where a board is (Step), how it ended (Outcome) and
// where a rollout is (RolloutState). Everything inside fleetctl holds these enums; the
// names below are what the SQLite file, the proto messages and the terminal show, and the
// only place a name becomes an enum again is `*_from_name`, at those edges.
#include <cstdint>
#include <optional>
#include <span>
#include <string_view>

namespace fleet::vocab {

// A board's way through a rollout (the table in controller/rollout/engine.cpp says which
// step follows which). The names are stored: renaming one orphans saved rows.
enum class Step : std::uint8_t {
  pending,           // its wave has not reached it
  connect,           // SSH session
  inspect,           // running kernel, boot_id, agent and its state
  push_bundle,       // upload the bundle, check its sha256 on the board, unpack it (nothing installed)
  staged,            // the bundle waits on the board for its wave (and its group's turn)
  push_agent,        // fleet-agent and its setup (controller, token, CA, trusted key)
  install,           // fleet-agent install: the slot in /boot/firmware
  reboot,            // fleet-agent tryboot
  request_rollback,  // fleet-agent rollback (a rollback's plan)
  await_boot,        // a new boot_id proves the reboot
  await_outcome,     // the agent's verdict on the trial boot
  done,              // see the board's Outcome
};

enum class Outcome : std::uint8_t {
  none,            // not finished
  committed,       // the board runs and committed the bundle's kernel
  skipped,         // it already ran and had committed it
  rolled_back,     // the trial kernel failed its contract; the board is back on its kernel
  boot_failed,     // the trial kernel never came up; the firmware fell back
  install_failed,  // the agent refused the bundle; nothing on the board changed
  unreachable,     // no answer on the network within the step's bound
  auth_refused,    // the board refused our SSH credentials
  host_key,        // unknown or changed host key
  timeout,         // a step took longer than its bound
  failed,          // anything else; the message says what
  not_started,     // an earlier wave failed its gate
};

enum class RolloutState : std::uint8_t {
  running,
  stopped,  // a wave exceeded max-fail: later waves did not start
  done,
  dry_run,
};

// Every value, in declaration order (metrics give each a series, pages a column).
std::span<const Step> all_steps();
std::span<const Outcome> all_outcomes();
std::span<const RolloutState> all_rollout_states();

const char* name(Step s);
const char* name(Outcome o);
const char* name(RolloutState s);
std::optional<Step> step_from_name(std::string_view name);
std::optional<Outcome> outcome_from_name(std::string_view name);
std::optional<RolloutState> rollout_state_from_name(std::string_view name);

}  // namespace fleet::vocab
