#pragma once
// The agent's persisted state: saved on entering each state, before that state's work, so
// a crash or a reboot resumes where it stopped (Mender SaveState::OnEnter).
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/error.hpp"

namespace fleet::agent {

enum class State {
  idle,           // nothing in progress
  installing,     // copying a bundle into a new slot
  installed,      // slot and tryboot.txt ready; waiting for `tryboot`
  tryboot,        // rebooting once into the slot
  verifying,      // on the trial boot, checking the contract
  committing,     // contract passed; making config.txt point at the slot
  verify_failed,  // contract failed; rebooting into the committed kernel
  rolling_back,   // `rollback`: config.txt back to the previous slot, rebooting
};
const char* state_name(State s);
std::optional<State> state_from_name(std::string_view name);

// What the agent tells the controller; mirrors fleet.v1.Phase in proto/fleet.proto.
enum class Phase { installed, tryboot, committed, verify_failed, rolled_back, boot_failed, install_failed };
const char* phase_name(Phase p);
std::optional<Phase> phase_from_name(std::string_view name);

// A slot folder the agent makes: "fleet-" and the first 12 hex digits of the build key.
// Only such folders are ever removed. Pure.
bool is_slot_name(std::string_view name);
// What config.txt's os_prefix may name: "" (the unprefixed files), a slot, or a plain
// relative folder of the user's own, nested or not (read, never removed). Pure.
bool is_slot_folder(std::string_view name);

struct Slot {
  std::string name;     // folder under /boot/firmware; "" = the unprefixed (stock) files
  std::string release;  // uname -r of its kernel
};

// What to measure after a trial boot passes its contract, and the minimum it must reach
// (`fleet-agent install --bench ...`, from the inventory's fleet_bench* variables).
struct BenchSpec {
  std::string shape = "auto";     // a probe shape (7b, 3b, 1b, 110m, 15m) or auto
  std::string model;              // a GGUF file on the board: the probe's shape, and llama-bench
  int threads = 0;                // 0: every CPU
  double min_tokens_per_s = 0;    // 0: report only; otherwise below it the verification fails
  int max_seconds = 0;            // the probe's bound at boot; 0: the probe's default (60 s)
  double max_regression = 0;      // 0: not gated; 0.03: a trial kernel more than 3% slower than the
                                  // committed one (beyond the noise of both) fails the verification
};

// What a measurement measured, so two are compared only when it is the same: "probe 1b, 4
// threads", "model /srv/m.gguf, all threads".
std::string bench_key(const BenchSpec& spec);

// One measurement of a kernel's tokens/s, kept to compare a trial kernel with the committed
// one: at install the committed kernel's (or the last one of the same kernel and key, when
// younger than a day), after the trial boot the trial kernel's.
struct Measurement {
  std::string release;        // the kernel it ran on
  std::string key;            // what measured it, resolved: "probe 1b (synthetic weights, neon-dotprod), all
                              // threads", "llama-bench tg16 of /m.gguf, 4 threads": two compare only if equal
  double tokens_per_s = 0;
  double spread = 0;          // one token's time, interquartile / median (llama-bench: stddev / mean)
  int tokens = 0;             // tokens timed (llama-bench: its repetitions)
  std::int64_t at_ms = 0;
  bool cut_short = false;     // the probe's bound ended it before its minimums
  std::string spec{};         // bench_key of the request: a kept figure serves a later request only if equal
};

struct Target {
  Slot slot;
  std::string build_key;
  std::string rollout_id;
  std::optional<BenchSpec> bench;
  std::optional<Measurement> baseline{};  // the committed kernel's, measured (or reused) at install
  std::string baseline_note{};          // why there is none, when bench is set
};

struct Outcome {
  Phase phase = Phase::committed;
  std::string release;
  std::string message;
  std::int64_t at_ms = 0;
};

struct AgentState {
  State state = State::idle;
  Slot committed;                    // what config.txt boots
  std::optional<Slot> previous;      // kept for rollback
  std::optional<Target> target;      // the update in progress
  int boots_in_state = 0;            // boot-checks seen in this state: caps reboot loops
  std::string note;                  // why the update in progress is failing, across a reboot
  std::optional<Outcome> last;       // how the last update or rollback ended
  std::uint64_t sequence = 0;        // numbers the reports
  std::optional<Measurement> measured;  // the committed kernel's latest measurement, reused as a baseline
};

std::string state_to_json(const AgentState& s);
Result<AgentState> parse_state(std::string_view json, std::string_view source);

}  // namespace fleet::agent
