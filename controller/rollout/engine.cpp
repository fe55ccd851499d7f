#include "controller/rollout/engine.hpp"

#include <span>
#include <thread>

namespace fleet::rollout {
namespace {

constexpr std::pair<Step, const char*> k_step_names[] = {
    {Step::connect, "connect"},         {Step::inspect, "inspect"},       {Step::push_agent, "push_agent"},
    {Step::push_bundle, "push_bundle"}, {Step::install, "install"},       {Step::reboot, "reboot"},
    {Step::request_rollback, "request_rollback"},
    {Step::await_boot, "await_boot"},   {Step::await_outcome, "await_outcome"}, {Step::done, "done"},
};

struct Ctx {
  store::BoardRow& row;
  BoardIO& io;
  Clock& clock;
  const Timeouts& t;
  const BoardTarget& target;
  std::chrono::steady_clock::time_point deadline;
  Plan plan = Plan::update;
};

using Outcome = std::optional<std::string>;  // set: the board is finished with this outcome

// Retries `op` until it succeeds or the step's deadline passes; only "the board is not
// there (yet)" is retried, a refusal is final.
template <class F>
auto retry(Ctx& c, F&& op) -> decltype(op()) {
  for (;;) {
    auto r = op();
    if (r || (r.error().code != Errc::unreachable && r.error().code != Errc::timeout)) return r;
    if (c.clock.now() >= c.deadline) return r;
    c.clock.sleep(c.t.poll);
  }
}

Result<Outcome> do_connect(Ctx& c) {
  FLEET_TRY(retry(c, [&] { return c.io.connect(); }));
  return Outcome{};
}

Result<Outcome> do_inspect(Ctx& c) {
  auto i = FLEET_TRY(c.io.inspect());
  c.row.running_release = i.running_release;
  c.row.boot_id = i.boot_id;
  // Already on the bundle and committed: nothing to do (boards on it are skipped).
  if (c.plan == Plan::update && i.running_release == c.target.kernel_release && i.committed_release == c.target.kernel_release) {
    c.row.message = "already runs " + i.running_release;
    return Outcome{"skipped"};
  }
  c.row.message = "runs " + i.running_release + (i.agent_current ? "" : ", agent to push");
  c.row.agent_sequence = static_cast<std::int64_t>(i.agent_sequence);
  return Outcome{};
}

Result<Outcome> do_push_agent(Ctx& c) {
  FLEET_TRY(c.io.push_agent(c.row.token));
  return Outcome{};
}

Result<Outcome> do_push_bundle(Ctx& c) {
  FLEET_TRY(retry(c, [&] { return c.io.push_bundle(); }));
  return Outcome{};
}

Result<Outcome> do_install(Ctx& c) {
  auto r = c.io.install(c.row.rollout_id);
  if (!r) {
    c.row.message = r.error().message;
    return Outcome{r.error().code == Errc::process_failed ? "install_failed" : "failed"};
  }
  return Outcome{};
}

Result<Outcome> do_reboot(Ctx& c) {
  // boot_id before the reboot: only a changed one proves the board rebooted (Ansible's
  // reboot module trusted a reconnect and was fooled, ansible#78007).
  c.row.boot_id = FLEET_TRY(c.io.boot_id());
  FLEET_TRY(c.io.tryboot());
  return Outcome{};
}

Result<Outcome> do_request_rollback(Ctx& c) {
  c.row.boot_id = FLEET_TRY(c.io.boot_id());
  FLEET_TRY(c.io.rollback());
  return Outcome{};
}

Result<Outcome> do_await_boot(Ctx& c) {
  for (;;) {
    auto id = c.io.boot_id();
    if (id && *id != c.row.boot_id) {
      c.row.boot_id = *id;
      return Outcome{};
    }
    if (!id && id.error().code != Errc::unreachable && id.error().code != Errc::timeout) {
      return std::unexpected(id.error());
    }
    if (c.clock.now() >= c.deadline) {
      return fail(Errc::timeout, "the board did not come back with a new boot_id in " +
                                     std::to_string(c.t.boot.count()) + " s");
    }
    c.clock.sleep(c.t.poll);
  }
}

Result<Outcome> do_await_outcome(Ctx& c) {
  const auto before = static_cast<std::uint64_t>(c.row.agent_sequence);
  for (;;) {
    auto v = retry(c, [&] { return c.io.agent_view(); });
    if (!v) return std::unexpected(v.error());
    if (v->state == "idle" && v->sequence > before && !v->last_phase.empty()) {
      c.row.running_release = v->committed_release;
      c.row.message = v->last_message;
      if (v->last_phase == "COMMITTED" && c.plan == Plan::update) {
        return Outcome{v->committed_release == c.target.kernel_release ? "committed" : "failed"};
      }
      if (v->last_phase == "ROLLED_BACK") return Outcome{"rolled_back"};
      if (v->last_phase == "BOOT_FAILED") return Outcome{"boot_failed"};
      if (v->last_phase == "INSTALL_FAILED") return Outcome{"install_failed"};
      return Outcome{"failed"};
    }
    if (v->state == "installed") {
      // Resumed after a kill between install and tryboot: trial-boot now.
      return Outcome{};  // handled by the caller: back to reboot
    }
    if (c.clock.now() >= c.deadline) {
      return fail(Errc::timeout, "the agent did not conclude in " + std::to_string(c.t.outcome.count()) +
                                     " s (state " + v->state + ")");
    }
    c.clock.sleep(c.t.poll);
  }
}

struct Row {
  Step step;
  Result<Outcome> (*act)(Ctx&);
  Step next;
  std::chrono::seconds Timeouts::*timeout;
};

// One board's way through a rollout, in one place.
constexpr Row k_steps[] = {
    {Step::connect, do_connect, Step::inspect, &Timeouts::connect},
    {Step::inspect, do_inspect, Step::push_agent, &Timeouts::connect},
    {Step::push_agent, do_push_agent, Step::push_bundle, &Timeouts::push},
    {Step::push_bundle, do_push_bundle, Step::install, &Timeouts::push},
    {Step::install, do_install, Step::reboot, &Timeouts::install},
    {Step::reboot, do_reboot, Step::await_boot, &Timeouts::connect},
    {Step::await_boot, do_await_boot, Step::await_outcome, &Timeouts::boot},
    {Step::await_outcome, do_await_outcome, Step::done, &Timeouts::outcome},
};

// A return to the previous kernel: the agent does the work, we watch it happen.
constexpr Row k_rollback_steps[] = {
    {Step::connect, do_connect, Step::inspect, &Timeouts::connect},
    {Step::inspect, do_inspect, Step::request_rollback, &Timeouts::connect},
    {Step::request_rollback, do_request_rollback, Step::await_boot, &Timeouts::connect},
    {Step::await_boot, do_await_boot, Step::await_outcome, &Timeouts::boot},
    {Step::await_outcome, do_await_outcome, Step::done, &Timeouts::outcome},
};

std::string outcome_of(const Error& e) {
  switch (e.code) {
    case Errc::unreachable: return "unreachable";
    case Errc::auth_refused: return "auth_refused";
    case Errc::host_key: return "host_key";
    case Errc::timeout: return "timeout";
    default: return "failed";
  }
}

}  // namespace

const char* step_name(Step s) {
  for (auto [v, n] : k_step_names)
    if (v == s) return n;
  return "?";
}

std::optional<Step> step_from_name(std::string_view name) {
  for (auto [v, n] : k_step_names)
    if (name == n) return v;
  return std::nullopt;
}

void RealClock::sleep(std::chrono::milliseconds d) { std::this_thread::sleep_for(d); }

bool is_failure(const std::string& outcome, Plan plan) {
  if (plan == Plan::rollback) return outcome != "rolled_back";
  return !outcome.empty() && outcome != "committed" && outcome != "skipped";
}

void run_board(store::BoardRow& row, BoardIO& io, Clock& clock, const Timeouts& t, const BoardTarget& target,
               const std::function<void(const store::BoardRow&)>& save, Plan plan) {
  auto step = step_from_name(row.state).value_or(Step::connect);
  std::span<const Row> table = plan == Plan::update ? std::span<const Row>(k_steps) : std::span<const Row>(k_rollback_steps);
  // A resumed board needs a session first; steps after the trial reboot only watch.
  if (step != Step::connect && step != Step::done) {
    Ctx c{row, io, clock, t, target, clock.now() + t.connect, plan};
    if (auto r = do_connect(c); !r && step < Step::reboot) {
      row.outcome = outcome_of(r.error());
      row.message = r.error().message;
      row.state = step_name(Step::done);
      save(row);
      return;
    }
    if (step == Step::reboot || step == Step::await_boot) step = Step::await_outcome;
  }
  int resumed_reboots = 0;
  while (step != Step::done) {
    const Row* r = nullptr;
    for (const auto& x : table)
      if (x.step == step) r = &x;
    if (!r) {
      row.outcome = "failed";
      row.message = std::string("step ") + step_name(step) + " is not part of this plan";
      break;
    }
    row.state = step_name(step);
    save(row);  // on entering, before the work
    Ctx c{row, io, clock, t, target, clock.now() + t.*(r->timeout), plan};
    auto result = r->act(c);
    if (!result) {
      row.outcome = outcome_of(result.error());
      row.message = result.error().message;
      break;
    }
    if (*result) {
      row.outcome = **result;
      break;
    }
    // await_outcome found the slot installed but not trial-booted (a resume): reboot it.
    if (plan == Plan::update && step == Step::await_outcome && ++resumed_reboots <= 1) {
      auto v = io.agent_view();
      if (v && v->state == "installed") {
        step = Step::reboot;
        continue;
      }
    }
    step = r->next;
  }
  if (row.outcome.empty()) row.outcome = "failed";
  row.state = step_name(Step::done);
  save(row);
}

}  // namespace fleet::rollout
