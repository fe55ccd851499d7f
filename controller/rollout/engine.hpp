#pragma once
// The rollout engine: boards in waves, each board through the steps of one table
// (engine.cpp, k_table), its row saved in SQLite on entering each step so `--resume`
// continues where a killed controller stopped.
//
// Slots are for work, not for waiting (unlike Ansible's forks): `forks` bounds the boards in
// SSH work (connect through the reboot command, and a rollback request). A board that is
// rebooting, booting or measuring holds no slot: a small pool of watchers polls it, each
// poll a short SSH call, with the step's own deadline. While a wave is on trial, free slots
// pre-stage the next wave (upload and sha256 check of the bundle: nothing installed), and the
// wave gate still decides before any board of the next wave is changed.
//
// Board I/O is behind BoardIO, made per board by a factory; the I/O runs on an Executor,
// which also owns time: threads and the steady clock in production, one thread and a
// simulated clock in unit tests and bench/rollout_sim.
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "common/error.hpp"
#include "controller/rollout/waves.hpp"
#include "controller/store/store.hpp"
#include "controller/vocab/vocab.hpp"

namespace fleet::rollout {

using vocab::Outcome;
using vocab::RolloutState;
using vocab::Step;

// What the agent on a board says about itself (fleet-agent status --json).
enum class AgentState : std::uint8_t { absent, idle, installed, busy };
// How the agent's last update or rollback ended (fleet.v1.Phase's conclusions).
enum class AgentPhase : std::uint8_t { none, committed, rolled_back, boot_failed, install_failed, other };

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
  AgentState state = AgentState::absent;
  AgentPhase last_phase = AgentPhase::none;
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
  virtual Result<void> push_bundle() = 0;         // upload, sha256 check, unpack, the agent staged; nothing installed
  virtual Result<void> install(const std::string& rollout_id) = 0;
  virtual Result<void> tryboot() = 0;             // the connection may drop: not an error
  virtual Result<void> rollback() = 0;            // fleet-agent rollback: reboots into the previous slot
  virtual Result<std::string> boot_id() = 0;      // reconnects first
  virtual Result<AgentView> agent_view() = 0;
};

// Makes the BoardIO of one board (an SSH board from the inventory in production). An error
// (the board left the inventory, a bad variable) finishes that board as failed.
using BoardFactory = std::function<Result<std::unique_ptr<BoardIO>>(const store::BoardRow& row)>;

// Runs board I/O away from the rollout's loop, and keeps the time.
class Executor {
 public:
  using Clock = std::chrono::steady_clock;
  virtual ~Executor() = default;
  virtual Clock::time_point now() = 0;
  // Runs `job` (one step of board `board`); its completion comes back from wait().
  virtual void submit(std::size_t board, std::function<void()> job) = 0;
  // The boards whose jobs finished; waits until at least one did or `until` passed.
  virtual std::vector<std::size_t> wait(Clock::time_point until) = 0;
};

// Threads for the I/O (`threads` of them), the steady clock.
std::unique_ptr<Executor> thread_executor(int threads);

// One thread and a simulated clock: a job runs when submitted, and completes after the time
// it charged (charge(), called by a simulated BoardIO during the job); wait() moves the clock
// to the next completion. Deterministic: unit tests and bench/rollout_sim.
class SimExecutor : public Executor {
 public:
  Clock::time_point now() override { return now_; }
  void submit(std::size_t board, std::function<void()> job) override;
  std::vector<std::size_t> wait(Clock::time_point until) override;
  void charge(std::chrono::milliseconds d) { charged_ += d; }

 private:
  struct Pending {
    Clock::time_point at;
    std::uint64_t order;
    std::size_t board;
  };
  static bool later(const Pending& a, const Pending& b);
  Clock::time_point now_{};
  std::chrono::milliseconds charged_{0};
  std::uint64_t order_ = 0;
  std::vector<Pending> heap_;
};

// How long each step may take in all (a board that is not there yet is retried within it).
struct Timeouts {
  std::chrono::seconds connect{120};
  std::chrono::seconds push{1800};
  std::chrono::seconds install{600};
  std::chrono::seconds boot{600};
  std::chrono::seconds outcome{600};
  std::chrono::milliseconds poll{2000};
  // After the last verdict: for the agents' own reports of it (checks, tokens/s), which come
  // over gRPC beside the SSH that saw the verdict. The report server goes when this ends.
  std::chrono::seconds reports{60};
};

// What is done to a board: an update to a bundle, or a return to its previous kernel.
enum class Plan : std::uint8_t { update, rollback };

// Who holds a slot. `work` is fleetctl's; `held` is Ansible's fork model (a board holds its
// slot from connect to verdict, no pre-staging), kept to measure against (bench/rollout_sim).
enum class SlotPolicy : std::uint8_t { work, held };

struct RunnerOptions {
  Plan plan = Plan::update;
  std::string kernel_release;           // the bundle's: boards that run and committed it are skipped
  MaxFail max_fail{};                   // per wave
  int forks = 5;                        // boards in SSH work at once
  int watchers = 0;                     // polls at once (0: max(16, forks)): a poll is one short SSH call
  bool prestage = true;                 // push the next wave's bundle while a wave is on trial
  SlotPolicy slots = SlotPolicy::work;
  Timeouts timeouts;
};

// A board of the rollout: its saved row, and what the inventory says about it.
struct RunnerBoard {
  store::BoardRow row;
  std::string group;     // fleet_group ("" none): boards that serve one model together
  int group_max_down = 1;
};

// Told of every saved row (the terminal view, a counter in benchmarks).
using RowSink = std::function<void(const store::BoardRow& row)>;

// A report an agent wrote when it concluded (over SSH the runner saw its number): it travels
// to the controller on its own (fleet-agent send-reports, gRPC), maybe after the verdict.
struct ReportDue {
  std::string board;
  std::uint64_t sequence = 0;
};

struct RunnerResult {
  RolloutState state = RolloutState::done;
  std::string message;  // why it stopped
  int committed = 0, skipped = 0, failed = 0, not_started = 0;
  std::int64_t saves = 0;                            // rows written
  std::chrono::nanoseconds save_time{0};             // in the store (wall clock, whatever the executor)
  int max_in_work = 0, max_watching = 0;             // peaks, to check the bounds
  std::vector<ReportDue> reports_due;                // boards whose agent concluded in this run
};

class RolloutRunner {
 public:
  RolloutRunner(store::Store& store, BoardFactory factory, Executor& executor, RowSink sink)
      : store_(store), factory_(std::move(factory)), exec_(executor), sink_(std::move(sink)) {}
  // Drives every board to a verdict, wave by wave. `boards` are in wave order; a row's step
  // says where it is (pending for a new rollout, anything for --resume). `rollout`, if given,
  // moves through its own states (running, stopped, done) and is saved when it does.
  // Store errors do not end the loop: the boards whose step could not be saved stop there,
  // failed with the error (their work never runs unrecorded), and the message says so.
  RunnerResult run(std::vector<RunnerBoard>& boards, const RunnerOptions& options, store::RolloutRow* rollout = nullptr);

 private:
  store::Store& store_;
  BoardFactory factory_;
  Executor& exec_;
  RowSink sink_;
};

// Did the board fail what the plan asked of it?
bool is_failure(Outcome outcome, Plan plan = Plan::update);

// The order --dry-run shows: per wave, the boards in the order their change starts, in
// batches that groups allow to be down together. Pure.
struct DryRunWave {
  std::vector<std::vector<std::string>> batches;  // a board's change waits for its group's previous batch
};
std::vector<DryRunWave> group_order(const std::vector<RunnerBoard>& boards);

}  // namespace fleet::rollout
