#pragma once
// The agent's update lifecycle on a Pi 5: install a bundle into a slot of /boot/firmware,
// boot it once with the tryboot flag, verify it against its contract, then commit the slot
// or fall back to the committed kernel. The flow is the transition table in lifecycle.cpp;
// every path is under a root, every write goes through Disk, the board through System.
#include <filesystem>
#include <string>
#include <vector>

#include "common/bundle.hpp"
#include "common/error.hpp"
#include "common/signing.hpp"
#include "node-agent/lifecycle/disk.hpp"
#include "node-agent/lifecycle/state.hpp"
#include "node-agent/lifecycle/system.hpp"

namespace fleet::agent {

// Where things live on a board, all under one root ("/" on a board, a folder in tests).
struct BoardPaths {
  std::filesystem::path root;
  std::filesystem::path boot() const { return root / "boot/firmware"; }
  std::filesystem::path state_dir() const { return root / "var/lib/fleet-agent"; }
  std::filesystem::path state_file() const { return state_dir() / "state.json"; }
  std::filesystem::path outbox() const { return state_dir() / "outbox"; }
  std::filesystem::path modules() const { return root / "lib/modules"; }
  // Public keys (*.pem) whose signatures install accepts; none: bundles need no signature.
  std::filesystem::path trusted_keys() const { return root / "etc/fleet-agent/trusted-keys"; }
};

inline constexpr const char* k_slot_prefix = "fleet-";
using bundle::k_slot_contract;
// In the outbox: the highest report sequence already delivered.
inline constexpr const char* k_sent_marker = "sent";
// A board that boots this often in one state without leaving it is in a loop: give up and
// go back to the committed kernel (Mender's StateLoopDetected).
inline constexpr int k_max_boots_in_state = 3;

// config.txt with its os_prefix set to `slot` ("" removes it). Pure.
std::string config_with_prefix(const std::string& config, const std::string& slot);
// The committed command line with the bundle's words: key=value words replace the same key,
// others are added once. Pure.
std::string merge_cmdline(const std::string& base, const std::vector<std::string>& extra);
// The os_prefix a config.txt sets, without the trailing '/' ("" if none). Pure.
std::string prefix_of(const std::string& config);
// Tokens per second as checks show it: "4.52". Pure.
std::string format_rate(double tokens_per_s);

// What moves the flow: a command, a fact seen at boot, or the outcome of an action.
enum class Event {
  install,         // `fleet-agent install`
  install_done,
  install_error,
  tryboot,         // `fleet-agent tryboot`
  booted_target,   // boot-check: the kernel of the update in progress runs
  booted_other,    // boot-check: another kernel runs (the committed one, after a fallback)
  checks_passed,
  checks_failed,
  config_written,  // config.txt now boots the target slot
  rollback,        // `fleet-agent rollback`
  loop_limit,      // boot-check ran k_max_boots_in_state times in one state
};
const char* event_name(Event e);

// What a transition does (see k_table in lifecycle.cpp).
enum class Action {
  copy_bundle,        // -> install_done | install_error
  report_installed,
  reboot_tryboot,     // report TRYBOOT, reboot with the flag
  run_checks,         // -> checks_passed | checks_failed
  commit_config,      // config.txt -> target slot; -> config_written
  commit_and_reboot,  // config.txt -> target slot, normal reboot (the trial kernel is not running)
  fail_and_reboot,    // report VERIFY_FAILED, normal reboot into the committed kernel
  reboot_normal,
  rollback_config,    // config.txt -> previous slot, normal reboot
  // Into idle (conclusions):
  abort_install,      // remove the half-written slot: INSTALL_FAILED
  boot_failed,        // the new kernel never came up; drop its slot: BOOT_FAILED
  rolled_back,        // after a failed verification; drop the slot: ROLLED_BACK
  finish_commit,      // the slot becomes committed, older slots go: COMMITTED
  finish_rollback,    // the previous slot becomes committed: ROLLED_BACK
  give_up,            // a reboot loop: config.txt -> committed slot: BOOT_FAILED
};

struct Context {
  BoardPaths paths;
  Disk& disk;
  System& system;
  std::string board_id;
  // When not empty, install takes only bundles signed by one of these keys.
  std::vector<signing::PublicKey> trusted_keys = {};
};

class Agent {
 public:
  explicit Agent(Context ctx) : ctx_(std::move(ctx)) {}

  // The saved state; on a board that never ran the agent, one made from config.txt and
  // the running kernel (the stock kernel counts as the committed slot "").
  Result<AgentState> load();

  // Checks the bundle and the room on the boot partition (changing nothing if either is
  // wrong), then copies it into a new slot and writes tryboot.txt.
  // `bench`: measure throughput after the trial boot passes its contract (and hold it to
  // bench->min_tokens_per_s).
  Result<void> install(const std::filesystem::path& bundle, const std::string& rollout_id,
                       const std::optional<BenchSpec>& bench = std::nullopt);
  // Reboots once into the installed slot with the tryboot flag.
  Result<void> tryboot();
  // Runs at every boot: carries on from the saved state (verify, commit, roll back).
  Result<void> boot_check();
  // Back to the previous committed slot, then a normal reboot.
  Result<void> rollback();

 private:
  Result<void> fire(Event event);
  Result<void> conclude(Action action);
  Result<void> save();
  std::uint64_t last_sequence();
  Result<void> report(AgentState& state, Phase phase, const std::string& message, const Report* checks = nullptr);

  Result<Event> copy_bundle();
  Result<void> abort_install();
  Result<Event> run_checks();
  void measure_throughput(const BenchSpec& spec);
  Result<void> write_config_for(const Slot& slot);
  Result<void> remove_old_slots(const AgentState& next);
  Result<void> remove_target_slot();
  // boot/firmware/NAME[suffix] and lib/modules/RELEASE[suffix], refused for a name the
  // agent would not make: every path the agent removes or writes is built by these.
  Result<std::filesystem::path> slot_dir(const std::string& name, std::string_view suffix = "") const;
  Result<std::filesystem::path> modules_dir(const std::string& release, std::string_view suffix = "") const;

  Context ctx_;
  AgentState st_;
  std::filesystem::path bundle_;   // during install
  bundle::Manifest manifest_;      // during install: the verified manifest of bundle_
  std::string reason_;             // why the last action failed
  std::string signer_;             // during install: the key that signed the bundle, if any
  Report last_report_;
  std::optional<fleet::v1::Throughput> last_throughput_;  // measured after last_report_ passed
  std::optional<Measurement> last_trial_;                 // the same, to keep once committed
};

}  // namespace fleet::agent
