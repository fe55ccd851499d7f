#include "controller/rollout/engine.hpp"

#include <algorithm>
#include <condition_variable>
#include <deque>
#include <map>
#include <mutex>
#include <set>
#include <thread>
#include <tuple>

namespace fleet::rollout {
namespace {

using Clock = Executor::Clock;

// What moves a board from one step to the next.
enum class Event : std::uint8_t {
  start,            // it gets a slot: its wave is open, or the next wave is pre-staged
  resume,           // --resume found it in this step
  restart,          // --resume found it not started (an earlier run stopped at a gate)
  ok,               // the step's work is done
  not_yet,          // not there (yet): unreachable, or the awaited change has not happened
  failed,           // an error, or the step's deadline passed while not_yet
  on_target,        // inspect: it already runs and committed the bundle's release
  wave_open,        // staged: its wave passed the previous gate and its group has room
  agent_installed,  // await_outcome: the slot is installed but was never trial-booted
  agent_idle,       // await_outcome of a rollback: the agent never got the request
  concluded,        // await_outcome: the agent reached a verdict
  gate_closed,      // an earlier wave failed its gate
};

const char* event_name(Event e) {
  constexpr const char* k[] = {"start",      "resume",    "restart",         "ok",
                               "not_yet",    "failed",    "on_target",       "wave_open",
                               "agent_installed", "agent_idle", "concluded", "gate_closed"};
  return k[static_cast<int>(e)];
}

// What a step asks of the runner.
enum class Kind : std::uint8_t {
  wait,   // no I/O: waits for an event from the runner (its wave, a slot, its group)
  work,   // SSH work: holds one of `forks` slots
  watch,  // polls (short SSH calls), no slot: the board is rebooting, booting or measuring
  final,
};

struct StepInfo {
  Step step;
  Kind kind;
  std::chrono::seconds Timeouts::*timeout;  // the bound of the whole step, retries included
};

constexpr StepInfo k_steps[] = {
    {Step::pending, Kind::wait, nullptr},
    {Step::connect, Kind::work, &Timeouts::connect},
    {Step::inspect, Kind::work, &Timeouts::connect},
    {Step::push_bundle, Kind::work, &Timeouts::push},
    {Step::staged, Kind::wait, nullptr},
    {Step::push_agent, Kind::work, &Timeouts::push},
    {Step::install, Kind::work, &Timeouts::install},
    {Step::reboot, Kind::work, &Timeouts::connect},
    {Step::request_rollback, Kind::work, &Timeouts::connect},
    {Step::await_boot, Kind::watch, &Timeouts::boot},
    {Step::await_outcome, Kind::watch, &Timeouts::outcome},
    {Step::done, Kind::final, nullptr},
};

const StepInfo& info(Step s) {
  for (const auto& i : k_steps)
    if (i.step == s) return i;
  return k_steps[0];
}

constexpr std::uint8_t U = 1, R = 2, UR = 3;  // the plans a row is for: update, rollback

struct Transition {
  std::uint8_t plans;
  Step from;
  Event event;
  Step to;
};

// Every way a board moves, in one place. A (step, event) pair not listed is a bug, and
// finishes the board as failed with a message naming the pair. Rows into `done` carry their
// outcome from the event: failed (from the error), on_target (skipped), concluded (the
// agent's verdict), gate_closed (not_started).
constexpr Transition k_table[] = {
    // plans  from                     event                   to
    {UR, Step::pending,          Event::start,           Step::connect},
    {UR, Step::connect,          Event::ok,              Step::inspect},
    {UR, Step::connect,          Event::not_yet,         Step::connect},  // retried until the deadline
    {U,  Step::inspect,          Event::ok,              Step::push_bundle},
    {R,  Step::inspect,          Event::ok,              Step::request_rollback},
    {U,  Step::inspect,          Event::on_target,       Step::done},
    {U,  Step::push_bundle,      Event::ok,              Step::staged},
    {U,  Step::push_bundle,      Event::not_yet,         Step::push_bundle},  // the upload resumes
    {U,  Step::staged,           Event::wave_open,       Step::push_agent},
    {U,  Step::push_agent,       Event::ok,              Step::install},
    {U,  Step::install,          Event::ok,              Step::reboot},
    {U,  Step::reboot,           Event::ok,              Step::await_boot},
    {R,  Step::request_rollback, Event::ok,              Step::await_boot},
    {UR, Step::await_boot,       Event::ok,              Step::await_outcome},
    {UR, Step::await_boot,       Event::not_yet,         Step::await_boot},
    {UR, Step::await_outcome,    Event::not_yet,         Step::await_outcome},
    {UR, Step::await_outcome,    Event::concluded,       Step::done},
    // Re-entries (once per run): a controller killed between install and tryboot, or
    // before the rollback request went out.
    {U,  Step::await_outcome,    Event::agent_installed, Step::reboot},
    {R,  Step::await_outcome,    Event::agent_idle,      Step::request_rollback},
    // Failures: the outcome comes from the error.
    {UR, Step::connect,          Event::failed,          Step::done},
    {UR, Step::inspect,          Event::failed,          Step::done},
    {U,  Step::push_bundle,      Event::failed,          Step::done},
    {U,  Step::push_agent,       Event::failed,          Step::done},
    {U,  Step::install,          Event::failed,          Step::done},
    {U,  Step::reboot,           Event::failed,          Step::done},
    {R,  Step::request_rollback, Event::failed,          Step::done},
    {UR, Step::await_boot,       Event::failed,          Step::done},
    {UR, Step::await_outcome,    Event::failed,          Step::done},
    // The wave gate: boards of later waves stop where they are, before any change.
    {UR, Step::pending,          Event::gate_closed,     Step::done},
    {UR, Step::connect,          Event::gate_closed,     Step::done},
    {UR, Step::inspect,          Event::gate_closed,     Step::done},
    {U,  Step::push_bundle,      Event::gate_closed,     Step::done},
    {U,  Step::staged,           Event::gate_closed,     Step::done},
    // --resume: before the change, start the prefix again (cheap: the agent and the bundle
    // already on the board are not sent again); after the reboot command, only watch.
    {UR, Step::pending,          Event::resume,          Step::pending},
    {UR, Step::connect,          Event::resume,          Step::connect},
    {UR, Step::inspect,          Event::resume,          Step::connect},
    {U,  Step::push_bundle,      Event::resume,          Step::connect},
    {U,  Step::staged,           Event::resume,          Step::connect},
    {U,  Step::push_agent,       Event::resume,          Step::connect},
    {U,  Step::install,          Event::resume,          Step::connect},
    {U,  Step::reboot,           Event::resume,          Step::await_outcome},
    {R,  Step::request_rollback, Event::resume,          Step::await_outcome},
    {UR, Step::await_boot,       Event::resume,          Step::await_outcome},
    {UR, Step::await_outcome,    Event::resume,          Step::await_outcome},
    {UR, Step::done,             Event::resume,          Step::done},
    {UR, Step::done,             Event::restart,         Step::pending},
};

std::optional<Step> next_step(Plan plan, Step from, Event e) {
  const std::uint8_t bit = plan == Plan::update ? U : R;
  for (const auto& t : k_table)
    if ((t.plans & bit) && t.from == from && t.event == e) return t.to;
  return std::nullopt;
}

// A rollout's own states: the wave gate moves it.
enum class RolloutEvent : std::uint8_t { wave_passed, last_wave_passed, wave_failed, resume };
struct RolloutTransition {
  RolloutState from;
  RolloutEvent event;
  RolloutState to;
};
constexpr RolloutTransition k_rollout_table[] = {
    {RolloutState::running, RolloutEvent::wave_passed, RolloutState::running},
    {RolloutState::running, RolloutEvent::last_wave_passed, RolloutState::done},
    {RolloutState::running, RolloutEvent::wave_failed, RolloutState::stopped},
    // --resume: a stopped rollout runs its not-started boards again (and its gate again).
    {RolloutState::running, RolloutEvent::resume, RolloutState::running},
    {RolloutState::stopped, RolloutEvent::resume, RolloutState::running},
    {RolloutState::done, RolloutEvent::resume, RolloutState::running},
};

RolloutState next_rollout_state(RolloutState from, RolloutEvent e) {
  for (const auto& t : k_rollout_table)
    if (t.from == from && t.event == e) return t.to;
  return from;
}

Outcome outcome_of(const Error& e, Step step) {
  switch (e.code) {
    case Errc::unreachable: return Outcome::unreachable;
    case Errc::auth_refused: return Outcome::auth_refused;
    case Errc::host_key: return Outcome::host_key;
    case Errc::timeout: return Outcome::timeout;
    case Errc::process_failed: return step == Step::install ? Outcome::install_failed : Outcome::failed;
    default: return Outcome::failed;
  }
}

bool not_there(const Error& e) { return e.code == Errc::unreachable || e.code == Errc::timeout; }

// The result of one job, read by the loop when the job completes.
struct JobResult {
  Event event = Event::failed;
  Outcome outcome = Outcome::failed;  // for failed and concluded
  std::string message;                // why (failed), or what the agent said (concluded)
  Errc code = Errc::io;               // of the last error, for a deadline that passes while not_yet
  std::uint64_t agent_sequence = 0;   // concluded: the number of the agent's report of it
};

// One board while the runner drives it.
struct Live {
  std::size_t index = 0;
  Step step = Step::pending;
  bool in_flight = false;
  bool has_slot = false;
  bool down = false;         // counted in its group's boards down (from leaving staged to done)
  bool polling = false;      // its job is a poll (holds a watcher)
  int reentries = 0;
  bool timed = false;        // its step's deadline runs (from the step's first job, not from entering it)
  Clock::time_point deadline = Clock::time_point::max();
  Clock::time_point due{};   // when its next poll or retry is due
  JobResult result;
  std::unique_ptr<BoardIO> io;  // while it holds a slot
};

constexpr int k_max_reentries = 1;

}  // namespace

// ---- executors ----

// The simulated clock's heap order: the earliest finish first, ties in submission order.
bool SimExecutor::later(const Pending& a, const Pending& b) { return std::tie(a.at, a.order) > std::tie(b.at, b.order); }

void SimExecutor::submit(std::size_t board, std::function<void()> job) {
  charged_ = std::chrono::milliseconds(0);
  job();
  heap_.push_back({now_ + charged_, order_++, board});
  std::push_heap(heap_.begin(), heap_.end(), later);
}

std::vector<std::size_t> SimExecutor::wait(Clock::time_point until) {
  std::vector<std::size_t> done;
  if (heap_.empty() || heap_.front().at > until) {
    now_ = std::max(now_, until);
    return done;
  }
  now_ = std::max(now_, heap_.front().at);
  while (!heap_.empty() && heap_.front().at <= now_) {
    std::pop_heap(heap_.begin(), heap_.end(), later);
    done.push_back(heap_.back().board);
    heap_.pop_back();
  }
  return done;
}

namespace {

class ThreadExecutor : public Executor {
 public:
  explicit ThreadExecutor(int threads) {
    for (int i = 0; i < std::max(1, threads); ++i) threads_.emplace_back([this] { work(); });
  }
  ~ThreadExecutor() override {
    {
      std::lock_guard lock(mu_);
      stop_ = true;
    }
    cv_jobs_.notify_all();
    for (auto& t : threads_) t.join();
  }
  Clock::time_point now() override { return Clock::now(); }
  void submit(std::size_t board, std::function<void()> job) override {
    {
      std::lock_guard lock(mu_);
      jobs_.emplace_back(board, std::move(job));
    }
    cv_jobs_.notify_one();
  }
  std::vector<std::size_t> wait(Clock::time_point until) override {
    std::unique_lock lock(mu_);
    cv_done_.wait_until(lock, until, [&] { return !done_.empty(); });
    std::vector<std::size_t> out;
    out.swap(done_);
    return out;
  }

 private:
  void work() {
    for (;;) {
      std::pair<std::size_t, std::function<void()>> job;
      {
        std::unique_lock lock(mu_);
        cv_jobs_.wait(lock, [&] { return stop_ || !jobs_.empty(); });
        if (jobs_.empty()) return;
        job = std::move(jobs_.front());
        jobs_.pop_front();
      }
      job.second();
      job.second = nullptr;  // the board's I/O object closes here, off the loop
      {
        std::lock_guard lock(mu_);
        done_.push_back(job.first);
      }
      cv_done_.notify_one();
    }
  }
  std::mutex mu_;
  std::condition_variable cv_jobs_, cv_done_;
  std::deque<std::pair<std::size_t, std::function<void()>>> jobs_;
  std::vector<std::size_t> done_;
  bool stop_ = false;
  std::vector<std::thread> threads_;
};

// One step's work against a board: runs on the executor, touches only its board's row.
JobResult run_step(Step step, BoardIO& io, store::BoardRow& row, const RunnerOptions& o) {
  JobResult r;
  auto error = [&](const Error& e) {
    r.event = not_there(e) ? Event::not_yet : Event::failed;
    r.outcome = outcome_of(e, step);
    r.message = e.message;
    r.code = e.code;
    return r;
  };
  auto ok = [&] {
    r.event = Event::ok;
    r.outcome = Outcome::none;
    return r;
  };
  switch (step) {
    case Step::connect:
      if (auto c = io.connect(); !c) return error(c.error());
      return ok();
    case Step::inspect: {
      auto i = io.inspect();
      if (!i) return error(i.error());
      row.running_release = i->running_release;
      row.boot_id = i->boot_id;
      if (o.plan == Plan::update && i->running_release == o.kernel_release &&
          i->committed_release == o.kernel_release) {
        r.event = Event::on_target;
        r.outcome = Outcome::skipped;
        r.message = "already runs " + i->running_release;
        row.message = r.message;
        return r;
      }
      row.message = "runs " + i->running_release + (i->agent_current ? "" : ", agent to push");
      row.agent_sequence = static_cast<std::int64_t>(i->agent_sequence);
      return ok();
    }
    case Step::push_bundle:
      if (auto p = io.push_bundle(); !p) return error(p.error());
      return ok();
    case Step::push_agent:
      if (auto p = io.push_agent(row.token); !p) return error(p.error());
      return ok();
    case Step::install:
      if (auto p = io.install(row.rollout_id); !p) {
        // A refusal by the agent is final; so is a board that vanished mid-install.
        error(p.error());
        r.event = Event::failed;
        return r;
      }
      return ok();
    case Step::reboot:
    case Step::request_rollback: {
      // boot_id before the reboot: only a changed one proves the board rebooted (Ansible's
      // reboot module trusted a reconnect and was fooled, ansible#78007).
      auto id = io.boot_id();
      if (!id) return error(id.error());
      row.boot_id = *id;
      auto p = step == Step::reboot ? io.tryboot() : io.rollback();
      if (!p) {
        error(p.error());
        r.event = Event::failed;
        return r;
      }
      return ok();
    }
    case Step::await_boot: {
      auto id = io.boot_id();
      if (!id) return error(id.error());
      if (*id == row.boot_id) {
        r.event = Event::not_yet;
        r.code = Errc::timeout;
        r.message = "the board did not come back with a new boot_id";
        return r;
      }
      row.boot_id = *id;
      return ok();
    }
    case Step::await_outcome: {
      auto v = io.agent_view();
      if (!v) return error(v.error());
      const auto before = static_cast<std::uint64_t>(row.agent_sequence);
      if (v->state == AgentState::idle && v->sequence > before && v->last_phase != AgentPhase::none) {
        row.running_release = v->committed_release;
        row.message = v->last_message;
        r.event = Event::concluded;
        r.message = v->last_message;
        r.agent_sequence = v->sequence;
        switch (v->last_phase) {
          case AgentPhase::committed:
            if (o.plan == Plan::rollback) r.outcome = Outcome::failed;
            else if (v->committed_release == o.kernel_release) r.outcome = Outcome::committed;
            else {
              r.outcome = Outcome::failed;
              r.message = "the agent committed " + v->committed_release + ", not the bundle's " + o.kernel_release;
              row.message = r.message;
            }
            break;
          case AgentPhase::rolled_back: r.outcome = Outcome::rolled_back; break;
          case AgentPhase::boot_failed: r.outcome = Outcome::boot_failed; break;
          case AgentPhase::install_failed: r.outcome = Outcome::install_failed; break;
          default: r.outcome = Outcome::failed; break;
        }
        return r;
      }
      if (o.plan == Plan::update && v->state == AgentState::installed) {
        r.event = Event::agent_installed;
        return r;
      }
      if (o.plan == Plan::rollback && v->state == AgentState::idle && v->sequence <= before) {
        r.event = Event::agent_idle;
        return r;
      }
      r.event = Event::not_yet;
      r.code = Errc::timeout;
      r.message = std::string("the agent did not conclude (state ") +
                  (v->state == AgentState::busy ? "busy" : v->state == AgentState::idle ? "idle" : "absent") + ")";
      return r;
    }
    default:
      r.event = Event::failed;
      r.message = std::string("step ") + vocab::name(step) + " has no work";
      return r;
  }
}

// The loop of one rollout. Single-threaded: only jobs run elsewhere, each on its own board,
// touching only that board's row; the loop reads a row again only when its job completed.
class Loop {
 public:
  Loop(store::Store& store, const BoardFactory& factory, Executor& exec, const RowSink& sink,
       std::vector<RunnerBoard>& boards, const RunnerOptions& o)
      : store_(store), factory_(factory), exec_(exec), sink_(sink), boards_(boards), o_(o) {
    watchers_ = o.watchers > 0 ? o.watchers : std::max(16, o.forks);
    prestage_ = o.prestage && o.plan == Plan::update && o.slots == SlotPolicy::work;
  }

  RunnerResult run(store::RolloutRow* rollout) {
    rollout_ = rollout;
    live_.resize(boards_.size());
    int waves = 0;
    for (const auto& b : boards_) waves = std::max(waves, b.row.wave + 1);
    wave_size_.assign(waves, 0);
    wave_done_.assign(waves, 0);
    for (std::size_t i = 0; i < boards_.size(); ++i) {
      auto& b = boards_[i].row;
      Live& l = live_[i];
      l.index = i;
      ++wave_size_[b.wave];
      // --resume: every saved step goes through the table once.
      Step to = b.step;
      if (b.step != Step::pending) {
        const bool restart = b.step == Step::done && b.outcome == Outcome::not_started;
        auto next = next_step(o_.plan, b.step, restart ? Event::restart : Event::resume);
        if (restart) b.outcome = Outcome::none;
        if (next) {
          to = *next;
        } else {
          b.outcome = Outcome::failed;
          b.message = std::string("cannot resume from step ") + vocab::name(b.step);
          to = Step::done;
        }
      }
      if (to != b.step) dirty_.push_back(i);
      b.step = l.step = to;
      if (to == Step::done) {
        ++wave_done_[b.wave];
        continue;
      }
      if (info(to).kind == Kind::watch) {  // past its change: down, as its group counts
        l.down = true;
        ++down_[boards_[i].group];
      }
      place(l);
    }
    if (rollout_) rollout_->state = next_rollout_state(rollout_->state, RolloutEvent::resume);
    for (;;) {
      gate();
      grant_slots();
      dispatch_due();
      flush();
      for (auto& job : runnable_) submit(job);
      runnable_.clear();
      if (in_flight_ == 0 && due_work_.empty() && due_watch_.empty()) {
        if (finished()) break;
        resolve_stuck();
        continue;
      }
      for (std::size_t i : exec_.wait(next_wake())) complete(live_[i]);
    }
    if (!stopped_) rollout_event(RolloutEvent::last_wave_passed, "");
    if (!save_error_.empty()) result_.message = save_error_ + (result_.message.empty() ? "" : "; " + result_.message);
    for (const auto& b : boards_) {
      if (b.row.outcome == Outcome::committed ||
          (o_.plan == Plan::rollback && b.row.outcome == Outcome::rolled_back)) {
        ++result_.committed;
      } else if (b.row.outcome == Outcome::skipped) {
        ++result_.skipped;
      } else if (b.row.outcome == Outcome::not_started) {
        ++result_.not_started;
      } else {
        ++result_.failed;
      }
    }
    result_.state = rollout_ ? rollout_->state : (stopped_ ? RolloutState::stopped : RolloutState::done);
    return result_;
  }

 private:
  // Nothing runs and nothing is due, yet boards are not done. Staged boards of the open wave
  // whose group has a board in doubt (failed after its reboot command, maybe down) are not
  // changed; anything else that cannot move is a bug here, said rather than hung.
  void resolve_stuck() {
    bool open_wave_waits = false;
    for (auto& l : live_) open_wave_waits = open_wave_waits || (l.step != Step::done && wave(l) <= open_);
    for (auto& l : live_) {
      if (l.step == Step::done || (open_wave_waits && wave(l) > open_)) continue;
      const auto& b = boards_[l.index];
      if (l.step == Step::staged && !b.group.empty() && !group_has_room(l)) {
        finish(l, Outcome::not_started,
               "not changed: group " + b.group + " has " + std::to_string(down_[b.group]) +
                   " board(s) that failed after their reboot command and may be down (fleet_group_max_down " +
                   std::to_string(b.group_max_down) + ")");
      } else {
        finish(l, Outcome::failed, std::string("stuck in step ") + vocab::name(l.step));
      }
    }
  }

  struct Runnable {
    std::size_t index;
    std::function<void()> job;
    bool poll;  // holds a watcher, not a slot
  };

  store::BoardRow& row(const Live& l) { return boards_[l.index].row; }
  int wave(const Live& l) { return boards_[l.index].row.wave; }

  // Where a board waits for what its step needs.
  void place(Live& l) {
    switch (info(l.step).kind) {
      case Kind::wait:
        if (l.step == Step::staged && l.has_slot) held_staged_.insert(l.index);  // Ansible's model keeps the fork
        else want_.insert({wave(l), l.step == Step::staged ? 1 : 2, l.index});
        break;
      case Kind::work:
        if (l.has_slot) runnable_.push_back({l.index, job_for(l, nullptr), false});
        else want_.insert({wave(l), 0, l.index});
        break;
      case Kind::watch:
        // A reboot takes seconds: the first look at a new boot_id waits one poll.
        schedule(l, exec_.now() + (l.step == Step::await_boot ? o_.timeouts.poll : std::chrono::milliseconds(0)));
        break;
      case Kind::final:
        break;
    }
  }

  void schedule(Live& l, Clock::time_point at) {
    l.due = at;
    if (info(l.step).kind == Kind::watch && !l.has_slot) due_watch_.insert({at, l.index});
    else due_work_.insert({at, l.index});
  }

  void unschedule(Live& l) {
    due_watch_.erase({l.due, l.index});
    due_work_.erase({l.due, l.index});
    want_.erase({wave(l), 0, l.index});
    want_.erase({wave(l), 1, l.index});
    want_.erase({wave(l), 2, l.index});
    held_staged_.erase(l.index);
  }

  // Enters a step: the row is saved with the others of this pass, before any job starts.
  void enter(Live& l, Step to) {
    const Step from = l.step;
    if (to != from) {
      l.timed = false;
      l.deadline = Clock::time_point::max();
    }
    l.step = to;
    auto& r = row(l);
    r.step = to;
    dirty_.push_back(l.index);
    const Kind kind = info(to).kind;
    if (l.has_slot && kind != Kind::work && (o_.slots == SlotPolicy::work || to == Step::done)) release(l);
    if (to == Step::done) {
      ++wave_done_[r.wave];
      // A board that failed after its reboot command without a verdict may still be down:
      // it keeps its group's place (the group's other boards are then not changed).
      const bool in_doubt = (from == Step::reboot || from == Step::await_boot || from == Step::await_outcome) &&
                            r.outcome != Outcome::committed && r.outcome != Outcome::rolled_back &&
                            r.outcome != Outcome::boot_failed && r.outcome != Outcome::install_failed;
      if (l.down && !in_doubt) {
        l.down = false;
        --down_[boards_[l.index].group];
      }
      return;
    }
    place(l);
  }

  void finish(Live& l, Outcome outcome, std::string message) {
    unschedule(l);
    auto& r = row(l);
    r.outcome = outcome;
    if (!message.empty()) r.message = std::move(message);
    if (l.step != Step::done) enter(l, Step::done);
  }

  void release(Live& l) {
    l.has_slot = false;
    l.io.reset();
    --in_work_;
  }

  // A slot and the board's I/O; false if the factory refused the board (it is then done).
  bool take_slot(Live& l) {
    auto io = factory_(row(l));
    if (!io) {
      finish(l, Outcome::failed, io.error().message);
      return false;
    }
    l.io = std::move(*io);
    l.has_slot = true;
    ++in_work_;
    result_.max_in_work = std::max(result_.max_in_work, in_work_);
    return true;
  }

  bool group_has_room(const Live& l) {
    const auto& b = boards_[l.index];
    if (b.group.empty()) return true;
    return down_[b.group] < std::max(1, b.group_max_down);
  }

  void go_down(Live& l) {
    l.down = true;
    ++down_[boards_[l.index].group];
  }

  // Free slots go to, in order: the open wave's boards in work without one (resumed), its
  // staged boards whose group has room, its pending boards; then, pre-staging, the next
  // wave's. Boards further along first: a slot finishes a change sooner there.
  void grant_slots() {
    if (stopped_) return;
    for (auto it = held_staged_.begin(); it != held_staged_.end();) {
      Live& l = live_[*it];
      if (wave(l) > open_ || !group_has_room(l)) {
        ++it;
        continue;
      }
      it = held_staged_.erase(it);
      go_down(l);
      move(l, Event::wave_open);
    }
    auto it = want_.begin();
    while (it != want_.end() && in_work_ < o_.forks) {
      auto [w, cls, i] = *it;
      if (w > open_ + 1 || (w == open_ + 1 && !prestage_)) break;
      if (w == open_ + 1 && cls == 1) {  // staged for the next wave: waits for the gate
        it = want_.lower_bound({w, 2, 0});
        continue;
      }
      Live& l = live_[i];
      if (cls == 1 && !group_has_room(l)) {
        ++it;
        continue;
      }
      it = want_.erase(it);
      if (take_slot(l)) {
        if (cls == 0) {
          runnable_.push_back({l.index, job_for(l, nullptr), false});
        } else if (cls == 1) {
          go_down(l);
          move(l, Event::wave_open);
        } else {
          move(l, Event::start);
        }
      }
      it = want_.lower_bound({w, cls, i});  // the set may have changed under the iterator
    }
  }

  // Due polls (no slot, at most `watchers` at once) and delayed retries of work steps.
  void dispatch_due() {
    const auto now = exec_.now();
    while (!due_work_.empty() && due_work_.begin()->first <= now) {
      Live& l = live_[due_work_.begin()->second];
      due_work_.erase(due_work_.begin());
      runnable_.push_back({l.index, job_for(l, nullptr), false});
    }
    while (!due_watch_.empty() && due_watch_.begin()->first <= now && watching_ < watchers_) {
      Live& l = live_[due_watch_.begin()->second];
      due_watch_.erase(due_watch_.begin());
      auto io = factory_(row(l));
      if (!io) {
        finish(l, Outcome::failed, io.error().message);
        continue;
      }
      ++watching_;
      result_.max_watching = std::max(result_.max_watching, watching_);
      runnable_.push_back({l.index, job_for(l, std::shared_ptr<BoardIO>(std::move(*io))), true});
    }
  }

  // The job of a board's current step, on its own I/O (polls) or the one its slot holds.
  std::function<void()> job_for(Live& l, std::shared_ptr<BoardIO> own) {
    BoardIO* io = own ? own.get() : l.io.get();
    store::BoardRow* r = &row(l);
    const RunnerOptions* o = &o_;
    Step step = l.step;
    return [&l, io, r, o, step, own = std::move(own)] {
      // A throw on a worker thread would end the process: it fails this board instead.
      try {
        l.result = run_step(step, *io, *r, *o);
      } catch (const std::exception& e) {
        l.result = JobResult{Event::failed, Outcome::failed, std::string("internal error in step ") + vocab::name(step) +
                                                                 ": " + e.what(), Errc::io};
      }
    };
  }

  void submit(Runnable& job) {
    Live& l = live_[job.index];
    if (l.step == Step::done) {  // stopped in this pass (a failed save) before its job started
      if (job.poll) --watching_;
      return;
    }
    l.in_flight = true;
    l.polling = job.poll;
    ++in_flight_;
    if (!l.timed) {
      // The step's bound starts with its first try: a resumed board waiting for its wave or
      // a slot has not used any of it.
      auto t = info(l.step).timeout;
      l.deadline = t ? exec_.now() + o_.timeouts.*t : Clock::time_point::max();
      l.timed = true;
    }
    exec_.submit(job.index, std::move(job.job));
  }

  Clock::time_point next_wake() {
    auto until = exec_.now() + std::chrono::hours(24);
    if (!due_work_.empty()) until = std::min(until, due_work_.begin()->first);
    // A due poll that waits for a watcher wakes nothing: a finishing job frees one.
    if (!due_watch_.empty() && (watching_ < watchers_ || due_watch_.begin()->first > exec_.now())) {
      until = std::min(until, std::max(due_watch_.begin()->first, exec_.now()));
    }
    return until;
  }

  void complete(Live& l) {
    l.in_flight = false;
    --in_flight_;
    if (l.polling) {
      l.polling = false;
      --watching_;
    }
    JobResult r = std::move(l.result);
    auto& rw = row(l);
    if (r.event == Event::not_yet) {
      auto again = next_step(o_.plan, l.step, Event::not_yet);
      if (!again || *again != l.step) {
        r.event = Event::failed;  // this step does not wait for a board that is not there
      } else if (exec_.now() >= l.deadline) {
        auto t = info(l.step).timeout;
        r.event = Event::failed;
        r.outcome = outcome_of(Error{r.code, ""}, l.step);
        r.message += " (gave up after " + std::to_string((o_.timeouts.*t).count()) + " s)";
      }
    }
    if (r.event == Event::agent_installed || r.event == Event::agent_idle) {
      if (++l.reentries > k_max_reentries) {
        r.message = r.event == Event::agent_installed
                        ? "the agent is still installed, not trial-booted, after the reboot request"
                        : "the agent did not act on the rollback request";
        r.event = Event::failed;
        r.outcome = Outcome::failed;
      }
    }
    if (r.event == Event::not_yet) {
      rw.message = r.message;
      schedule(l, exec_.now() + o_.timeouts.poll);
    } else {
      if (r.event == Event::failed || r.event == Event::concluded || r.event == Event::on_target) {
        rw.outcome = r.outcome;
        rw.message = r.message;
      }
      if (r.event == Event::concluded) result_.reports_due.push_back({rw.board, r.agent_sequence});
      move(l, r.event);
    }
    // A later wave whose gate closed: it stops where it is, before any change.
    if (stopped_ && wave(l) > open_ && l.step != Step::done) close(l);
  }

  // Fires an event on a board through the table.
  void move(Live& l, Event e) {
    auto to = next_step(o_.plan, l.step, e);
    if (!to) {
      row(l).outcome = Outcome::failed;
      row(l).message = std::string("no way from step ") + vocab::name(l.step) + " on " + event_name(e);
      unschedule(l);
      enter(l, Step::done);
      return;
    }
    enter(l, *to);
  }

  void close(Live& l) {
    if (l.in_flight || l.step == Step::done) return;  // an in-flight board stops when its job completes
    unschedule(l);
    for (auto it = runnable_.begin(); it != runnable_.end();) {
      if (it->index != l.index) {
        ++it;
        continue;
      }
      if (it->poll) --watching_;
      it = runnable_.erase(it);
    }
    row(l).outcome = Outcome::not_started;
    row(l).message = "an earlier wave failed its gate";
    move(l, Event::gate_closed);
  }

  // A wave whose boards are all done passes or fails its gate; the next one opens.
  void gate() {
    const int waves = static_cast<int>(wave_size_.size());
    while (!stopped_ && open_ < waves && wave_done_[open_] == wave_size_[open_]) {
      std::size_t failed = 0;
      for (const auto& b : boards_)
        if (b.row.wave == open_ && is_failure(b.row.outcome, o_.plan)) ++failed;
      if (exceeds(o_.max_fail, failed, wave_size_[open_])) {
        stopped_ = true;
        result_.message = std::to_string(failed) + " of " + std::to_string(wave_size_[open_]) + " boards failed in wave " +
                          std::to_string(open_ + 1) + " (max-fail " + describe(o_.max_fail) +
                          "): the remaining waves do not start";
        rollout_event(RolloutEvent::wave_failed, result_.message);
        for (auto& l : live_)
          if (wave(l) > open_) close(l);
        return;
      }
      ++open_;
      if (open_ < waves) rollout_event(RolloutEvent::wave_passed, "");
    }
  }

  static std::string describe(const MaxFail& m) { return std::to_string(m.value) + (m.percent ? "%" : ""); }

  void rollout_event(RolloutEvent e, const std::string& message) {
    if (!rollout_) return;
    auto to = next_rollout_state(rollout_->state, e);
    if (to == rollout_->state && message.empty()) return;
    rollout_->state = to;
    if (!message.empty()) rollout_->message = message;
    if (auto saved = store_.put_rollout(*rollout_); !saved) save_error_ = "the state database could not save: " + saved.error().message;
  }

  bool finished() {
    for (std::size_t w = 0; w < wave_size_.size(); ++w)
      if (wave_done_[w] != wave_size_[w]) return false;
    return true;
  }

  // Saves the rows of every board that entered a step in this pass, in one transaction,
  // before their jobs start. A failed save stops those boards: their work must not run
  // unrecorded (a resume would not know it happened).
  void flush() {
    if (dirty_.empty()) return;
    auto batch = std::move(dirty_);
    dirty_.clear();
    std::sort(batch.begin(), batch.end());
    batch.erase(std::unique(batch.begin(), batch.end()), batch.end());
    std::vector<const store::BoardRow*> rows;
    rows.reserve(batch.size());
    for (auto i : batch) rows.push_back(&boards_[i].row);
    const auto t0 = std::chrono::steady_clock::now();
    auto saved = store_.put_boards(rows);
    result_.save_time += std::chrono::steady_clock::now() - t0;
    result_.saves += static_cast<std::int64_t>(rows.size());
    if (!saved) {
      save_error_ = "the state database could not save: " + saved.error().message;
      std::vector<std::size_t> again;
      for (auto i : batch) {
        Live& l = live_[i];
        if (l.step == Step::done) {
          again.push_back(i);  // its outcome: tried again with the next save
          continue;
        }
        if (info(l.step).kind == Kind::watch) {
          // Its reboot command went out: it is watched to its verdict whatever the file does.
          again.push_back(i);
          continue;
        }
        unschedule(l);
        row(l).outcome = Outcome::failed;
        row(l).message = save_error_ + " (stopped before the step's work)";
        enter(l, Step::done);
      }
      dirty_ = std::move(again);
    }
    for (auto i : batch) sink_(boards_[i].row);
  }

  store::Store& store_;
  const BoardFactory& factory_;
  Executor& exec_;
  const RowSink& sink_;
  std::vector<RunnerBoard>& boards_;
  const RunnerOptions& o_;
  store::RolloutRow* rollout_ = nullptr;

  std::vector<Live> live_;
  std::vector<std::size_t> wave_size_, wave_done_;
  int open_ = 0;
  bool stopped_ = false;
  bool prestage_ = true;
  int watchers_ = 4;
  int in_work_ = 0, watching_ = 0, in_flight_ = 0;
  std::map<std::string, int> down_;
  // Boards that want a slot: (wave, class, index); class 0 in work, 1 staged, 2 pending.
  std::set<std::tuple<int, int, std::size_t>> want_;
  std::set<std::size_t> held_staged_;
  std::set<std::pair<Clock::time_point, std::size_t>> due_work_, due_watch_;
  std::vector<std::size_t> dirty_;
  std::vector<Runnable> runnable_;
  std::string save_error_;
  RunnerResult result_;
};

}  // namespace

std::unique_ptr<Executor> thread_executor(int threads) { return std::make_unique<ThreadExecutor>(threads); }

bool is_failure(Outcome outcome, Plan plan) {
  if (plan == Plan::rollback) return outcome != Outcome::rolled_back;
  return outcome != Outcome::none && outcome != Outcome::committed && outcome != Outcome::skipped;
}

RunnerResult RolloutRunner::run(std::vector<RunnerBoard>& boards, const RunnerOptions& options,
                                 store::RolloutRow* rollout) {
  Loop loop(store_, factory_, exec_, sink_, boards, options);
  return loop.run(rollout);
}

std::vector<DryRunWave> group_order(const std::vector<RunnerBoard>& boards) {
  std::vector<DryRunWave> waves;
  std::map<std::pair<int, std::string>, int> seen;  // (wave, group) -> boards placed so far
  for (const auto& b : boards) {
    if (b.row.wave >= static_cast<int>(waves.size())) waves.resize(b.row.wave + 1);
    std::size_t batch = 0;
    if (!b.group.empty()) {
      int k = seen[{b.row.wave, b.group}]++;
      batch = static_cast<std::size_t>(k / std::max(1, b.group_max_down));
    }
    auto& batches = waves[b.row.wave].batches;
    if (batches.size() <= batch) batches.resize(batch + 1);
    batches[batch].push_back(b.row.board);
  }
  return waves;
}

}  // namespace fleet::rollout
