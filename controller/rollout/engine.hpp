#pragma once
// A rollout: boards in waves, each board through the same steps (a table), its state
// saved in SQLite on entering each step so `--resume` continues where a killed controller
// stopped. Board I/O sits behind BoardIO (SSH in production, a fake in unit tests).
#include <chrono>
#include <cstdint>
#include <functional>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "controller/rollout/waves.hpp"
#include "controller/store/store.hpp"

namespace fleet::rollout {

// The steps of one board, in order. Saved by name in the boards table.
enum class Step {
  connect, inspect, push_agent, push_bundle, install, reboot, request_rollback, await_boot, await_outcome, done
};
const char* step_name(Step s);
std::optional<Step> step_from_name(std::string_view name);

// What a board looks like before we touch it.
struct Inspection {
  std::string running_release;
  std::string boot_id;
  std::string committed_release;  // from fleet-agent status ("" without an agent)
  std::uint64_t agent_sequence = 0;
  bool agent_current = false;     // the board's agent is the one we ship
  std::vector<std::string> trusted_keys = {};  // ids of the keys the board's agent trusts
};

// The agent's view after the trial boot.
struct AgentView {
  std::string state;              // idle, installed, ...
  std::string last_phase;         // COMMITTED, ROLLED_BACK, BOOT_FAILED, INSTALL_FAILED
  std::string last_message;
  std::string committed_release;
  std::uint64_t sequence = 0;
};

class BoardIO {
 public:
  virtual ~BoardIO() = default;
  virtual Result<void> connect() = 0;
  virtual Result<Inspection> inspect() = 0;
  virtual Result<void> push_agent(const std::string& token) = 0;
  virtual Result<void> push_bundle() = 0;
  virtual Result<void> install(const std::string& rollout_id) = 0;
  virtual Result<void> tryboot() = 0;             // the connection may drop: not an error
  virtual Result<void> rollback() = 0;            // fleet-agent rollback: reboots into the previous slot
  virtual Result<std::string> boot_id() = 0;      // reconnects first
  virtual Result<AgentView> agent_view() = 0;
};

class Clock {
 public:
  virtual ~Clock() = default;
  virtual std::chrono::steady_clock::time_point now() = 0;
  virtual void sleep(std::chrono::milliseconds d) = 0;
};
class RealClock : public Clock {
 public:
  std::chrono::steady_clock::time_point now() override { return std::chrono::steady_clock::now(); }
  void sleep(std::chrono::milliseconds d) override;
};

// How long each step may take (the table in engine.cpp names them).
struct Timeouts {
  std::chrono::seconds connect{120};
  std::chrono::seconds push{1800};
  std::chrono::seconds install{600};
  std::chrono::seconds boot{600};
  std::chrono::seconds outcome{600};
  std::chrono::milliseconds poll{2000};
};

struct BoardTarget {
  std::string kernel_release;  // the bundle's release: boards already on it are skipped
};

// What is done to a board: an update to a bundle, or a return to its previous kernel.
enum class Plan { update, rollback };

// Runs one board from its saved step to an outcome; saves the row on entering each step.
// The outcome is in row.outcome: committed, skipped, rolled_back, boot_failed,
// install_failed, unreachable, auth_refused, host_key, timeout, failed.
void run_board(store::BoardRow& row, BoardIO& io, Clock& clock, const Timeouts& timeouts, const BoardTarget& target,
               const std::function<void(const store::BoardRow&)>& save, Plan plan = Plan::update);

// Did the board fail what the plan asked of it?
bool is_failure(const std::string& outcome, Plan plan = Plan::update);

}  // namespace fleet::rollout
